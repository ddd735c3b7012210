#!/bin/bash
# Regenerates the seed corpora of fuzz_age and fuzz_signature with the
# standard tools: age files that Debian's `age` encrypted to the harness's
# test recipient, chunk lists that sha256sum wrote over 4 MiB pieces, and
# SSHSIG signatures by `ssh-keygen -Y sign`.
#
#   tests/fuzz/crypt-corpus.sh
#
# Rewrites tests/fuzz/corpus/fuzz_age/ and fuzz_signature/ (the bytes
# differ on every run: fresh file keys and random data); review
# `git status tests/fuzz/corpus` before committing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
AGE_DIR=$ROOT/tests/fuzz/corpus/fuzz_age
SIG_DIR=$ROOT/tests/fuzz/corpus/fuzz_signature
T=$(mktemp -d /tmp/crstream-cryptcorpus.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"

# The recipient of fuzz_age.c's test identity.
RECIPIENT=age1t0j9rafcucas7htch6dp3mdpcn9x42r4gpd42ay0f9kra3wq83rqa9dpx6
# The secret half of fuzz_signature.c's test key, for signing seeds only.
# A test key: it protects nothing.
cat >sk <<'KEY'
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACCaWuvE13V/BX8ul7K/DIBPc4ptnJy3408vLgFLYtPrvQAAAIj04PJf9ODy
XwAAAAtzc2gtZWQyNTUxOQAAACCaWuvE13V/BX8ul7K/DIBPc4ptnJy3408vLgFLYtPrvQ
AAAEBHkaZGBL34YCcsQr8HjBFJ/lUpImfDAMW9ne9yHyc/mppa68TXdX8Ffy6Xsr8MgE9z
im2cnLfjTy8uAUti0+u9AAAABGZ1enoB
-----END OPENSSH PRIVATE KEY-----
KEY
chmod 600 sk

# seed FILE OPTIONS-BYTE PART...: the options byte, then the parts.
seed() {
	local out=$1 opt=$2
	shift 2
	{ printf '%b' "\\x$(printf %02x "$opt")"; cat "$@"; } >"$out"
}
# le32 N: N as 4 bytes, little-endian.
le32() {
	printf '%b' "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))"
	printf '%b' "\\x$(printf %02x $((($1 >> 16) & 255)))\\x$(printf %02x $((($1 >> 24) & 255)))"
}

rm -rf "$AGE_DIR" "$SIG_DIR"
mkdir -p "$AGE_DIR" "$SIG_DIR"

# ---- age files (options: how the reader is fed and read) ----
age-keygen -o other.txt 2>/dev/null
other=$(age-keygen -y other.txt)
: >empty
printf hello >small
head -c 3000 /dev/urandom >mid
head -c 65536 /dev/urandom >c64k	# exactly one full chunk: the last one full
head -c 65537 /dev/urandom >c64k1	# a full chunk, then a 1-byte last one
age -r "$RECIPIENT" -o e0 empty
age -r "$RECIPIENT" -o e5 small
age -r "$RECIPIENT" -o e64k c64k
age -r "$RECIPIENT" -o e64k1 c64k1
age -r "$other" -r "$RECIPIENT" -o e2r mid
age -r "$other" -o eother small
seed "$AGE_DIR/empty-plaintext" 0 e0
seed "$AGE_DIR/five-bytes" 9 e5
seed "$AGE_DIR/one-full-chunk" 3 e64k
seed "$AGE_DIR/full-chunk-and-one" 12 e64k1
seed "$AGE_DIR/two-recipients" 20 e2r
seed "$AGE_DIR/other-recipient" 1 eother

# ---- chunk lists (options bit 0 clear; bits 1-5: the chunk size) ----
# 0x0e: 2^(15+7) = 4 MiB chunks; 0x02: 64 KiB.
n=$((2 * 4194304 + 1000))
head -c $n /dev/urandom >big
split -b 4194304 --filter=sha256sum big | cut -d' ' -f1 >list3
{ le32 $n; cat list3; } >p && seed "$SIG_DIR/chunks-3" 14 p
le32 0 >p && seed "$SIG_DIR/chunks-empty-stream" 14 p
{ le32 65536; sha256sum c64k | cut -d' ' -f1; } >p && seed "$SIG_DIR/chunks-64k-one" 2 p

# ---- signatures (options bit 0 set): message, separator, signature ----
printf '\n--next-part--\n' >sep
ssh-keygen -q -t ed25519 -N "" -C other -f other_sk
printf '{"version":1,"complete":true}\n' >msg
ssh-keygen -q -Y sign -n crstream -f sk msg
seed "$SIG_DIR/sshsig-manifest" 1 msg sep msg.sig
printf x >m2
ssh-keygen -q -Y sign -n crstream -f other_sk -O hashalg=sha256 m2
seed "$SIG_DIR/sshsig-untrusted-sha256" 3 m2 sep m2.sig
: >m3
ssh-keygen -q -Y sign -n file -f sk m3
seed "$SIG_DIR/sshsig-other-namespace" 5 m3 sep m3.sig
echo "crypt-corpus.sh: seeds in $AGE_DIR and $SIG_DIR" >&2
