#!/bin/bash
# Trusted checkpoints with the real CRIU: streams encrypted with age,
# manifests signed (SSHSIG, Ed25519), restores under a trust policy.
# Interoperability with Debian's `age` and `ssh-keygen`; round trips;
# every refusal the issue lists, each shown to hand CRIU nothing it
# should not get (the restore's served_bytes); key files' permissions; no
# key in a core dump or a log. The S3 round trips are in test_s3.sh.
source "$(dirname "$0")/../lib/harness.sh"

# The slow ones, on 2 shared cores under ASan (each cycle starts CRIU twice).
# shellcheck disable=SC2034,SC2154 # the harness's table
TEST_TIMEOUT+=([test_round_trips_encrypted_and_signed]=600 [test_refusals_hand_criu_nothing]=480
	[test_flipped_bytes_never_reach_criu]=600 [test_keys_stay_secret]=300)

json_get() {	# json_get FILE KEY (flat objects only)
	"$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

manifest_get() {	# manifest_get DIR PYTHON-EXPR-ON-m
	"$PYTHON" -c 'import json,sys; m=json.load(open(sys.argv[1]+"/manifest.json")); print(eval(sys.argv[2]))' "$1" "$2"
}

# keys: an age identity (id.txt, its recipient in $REC) and a signing key
# (sign, sign.pub), both made by crstream; a second signing key (other).
keys() {
	REC=$("$CRSTREAM" keygen --output "$T/id.txt")
	"$CRSTREAM" keygen --sign --output "$T/sign" >/dev/null
	"$CRSTREAM" keygen --sign --output "$T/other" >/dev/null
}

# refused WHY CKPT SUBJECT ARGS...: the restore fails with WHY on one line,
# hands CRIU nothing (served_bytes 0, unless ANY_SERVED=1; the count is
# left in $SERVED), and the dumped SUBJECT never ran again.
refused() {
	local why=$1 ck=$2 subject=$3
	shift 3
	local rc=0
	heartbeat_mark "$subject"
	"$CRSTREAM" restore --path "$ck" --json "$@" >"$T/refused.json" 2>"$T/refused.err" || rc=$?
	[ "$rc" = 1 ] || { fail "restore of $ck: exit $rc, not 1: $(cat "$T/refused.json")"; return 1; }
	local err
	err=$(json_get "$T/refused.json" error)
	[[ "$err" == *"$why"* ]] || { fail "expected \"$why\", got: $err"; return 1; }
	[ "$(wc -l <<<"$err")" = 1 ] || { fail "more than one line: $err"; return 1; }
	SERVED=$(json_get "$T/refused.json" served_bytes)
	[ "${ANY_SERVED:-0}" = 1 ] || [ "$SERVED" = 0 ] ||
		{ fail "CRIU was served $SERVED bytes of $ck ($why)"; return 1; }
	assert_never_ran "$subject"
}

copy_ck() {	# copy_ck FROM TO: a fresh copy of a checkpoint to damage
	rm -rf "$T/ck/$2"
	cp -a "$T/ck/$1" "$T/ck/$2"
}

ext_of() {
	case $1 in none) ;; lz4) echo .lz4 ;; zstd) echo .zst ;; esac
}

decompress() {	# decompress CODEC < stream > shard
	case $1 in none) cat ;; lz4) lz4 -dc ;; zstd) zstd -q -dc ;; esac
}

# Both kinds of key work with the standard tools, both ways round.
test_keygen_keys_work_with_age_and_ssh_keygen() {
	keys
	[ "$(age-keygen -y "$T/id.txt")" = "$REC" ] || fail "age-keygen -y disagrees with $REC"
	[ "$(ssh-keygen -y -f "$T/sign" | cut -d' ' -f1,2)" = "$(cut -d' ' -f1,2 "$T/sign.pub")" ] ||
		fail "ssh-keygen -y disagrees with sign.pub"
	[ "$(stat -c %a "$T/id.txt")" = 600 ] && [ "$(stat -c %a "$T/sign")" = 600 ] ||
		fail "keys are not 0600"
	expect_fail "refusing to overwrite" "$CRSTREAM" keygen --output "$T/id.txt"
	expect_fail "refusing to overwrite" "$CRSTREAM" keygen --sign --output "$T/sign"
	expect_misuse "--output FILE is required" "$CRSTREAM" keygen
	# Keys the standard tools made, used by crstream.
	age-keygen -o "$T/age-id.txt" 2>/dev/null
	ssh-keygen -q -t ed25519 -N '' -C test -f "$T/ssh-key"
	local pid
	pid=$(start_subject k mem --mib 8)
	dump_ok std "$pid" --streams 2 --recipient "$(age-keygen -y "$T/age-id.txt")" \
		--sign-key "$T/ssh-key"
	"$CRSTREAM" restore --path "$T/ck/std" --identity "$T/age-id.txt" \
		--trusted-key "$T/ssh-key.pub" >"$T/out"
	grep -q "signature verified (SHA256:" "$T/out" || fail "restore said: $(cat "$T/out")"
	verify_subject k
}

# streams 1 and 4 x lz4/zstd/none, encrypted and signed, each restored
# under a trust policy and verified by the process itself; every stream
# decrypts with `age -d` and decompresses with the codec's tool, the
# manifest verifies with `ssh-keygen -Y verify` (an altered one does not),
# and the chunk lists are what sha256sum says of each 4 MiB.
test_round_trips_encrypted_and_signed() {
	keys
	echo "crstream $(cat "$T/sign.pub")" >"$T/allowed_signers"
	local n c pid counter name i
	for n in 1 4; do
		for c in lz4 zstd none; do
			name=s$n-$c
			pid=$(start_subject "$name" mem --mib 8)
			counter=$(status_get "$T/$name.status" counter)
			dump_ok "$name" "$pid" --streams "$n" --compression "$c" --recipient "$REC" \
				--sign-key "$T/sign"
			check_modes "$T/ck/$name"
			[ "$(json_get "$T/$name.dump.json" encrypted)" = True ] &&
				[ "$(json_get "$T/$name.dump.json" signed)" = True ] || fail "$(cat "$T/$name.dump.json")"
			for ((i = 0; i < n; i++)); do
				local f
				f=$T/ck/$name/img-$i$(ext_of "$c").age
				age -d -i "$T/id.txt" "$f" | decompress $c >"$T/raw" || fail "age -d $f"
				[ "$(stat -c %s "$T/raw")" = "$(manifest_get "$T/ck/$name" "m['stream_files'][$i]['raw_bytes']")" ] ||
					fail "$f: age -d | $c -dc is not the raw shard"
				split -b 4194304 --filter=sha256sum "$f" | cut -d' ' -f1 |
					cmp -s - "$T/ck/$name/chunks-$i.sha256" || fail "chunks-$i.sha256 differs from sha256sum"
				[ "$(sha256sum <"$T/ck/$name/chunks-$i.sha256" | cut -d' ' -f1)" = \
					"$(manifest_get "$T/ck/$name" "m['stream_files'][$i]['digest']")" ] ||
					fail "the manifest's digest of chunks-$i.sha256 is not its SHA-256"
			done
			ssh-keygen -Y verify -f "$T/allowed_signers" -I crstream -n crstream \
				-s "$T/ck/$name/manifest.json.sig" <"$T/ck/$name/manifest.json" >/dev/null 2>&1 ||
				fail "ssh-keygen -Y verify refuses the manifest of $name"
			"$CRSTREAM" restore --path "$T/ck/$name" --identity "$T/id.txt" \
				--trusted-key "$T/sign.pub" --json >"$T/$name.restore.json" ||
				fail "restore $name: $(cat "$T/$name.restore.json")"
			[[ "$(json_get "$T/$name.restore.json" trust)" == "signature verified (SHA256:"* ]] ||
				fail "$(cat "$T/$name.restore.json")"
			verify_subject "$name" "$counter"
			kill_subject "$name"
		done
	done
	# An altered manifest: the standard tool refuses it too.
	sed -i 's/"shell_job":false/"shell_job":true/' "$T/ck/s1-lz4/manifest.json"
	! ssh-keygen -Y verify -f "$T/allowed_signers" -I crstream -n crstream \
		-s "$T/ck/s1-lz4/manifest.json.sig" <"$T/ck/s1-lz4/manifest.json" >/dev/null 2>&1 ||
		fail "ssh-keygen -Y verify accepts an altered manifest"
}

# Streams that stock `age` encrypted to a crstream recipient restore (no
# manifest: the layout, codec and encryption come from the names).
test_streams_encrypted_by_stock_age_restore() {
	keys
	local pid counter i
	pid=$(start_subject a mem --mib 16)
	counter=$(status_get "$T/a.status" counter)
	dump_ok plain "$pid" --streams 2 --compression zstd
	mkdir -p "$T/ck/byage"
	for i in 0 1; do
		age -r "$REC" -o "$T/ck/byage/img-$i.zst.age" "$T/ck/plain/img-$i.zst"
	done
	"$CRSTREAM" restore --path "$T/ck/byage" --identity "$T/id.txt" --json >"$T/r.json" ||
		fail "restore: $(cat "$T/r.json")"
	[ "$(json_get "$T/r.json" encrypted)" = True ] && [ "$(json_get "$T/r.json" trust)" = "unsigned checkpoint" ] ||
		fail "$(cat "$T/r.json")"
	verify_subject a "$counter"
}

# Every refusal of the issue, on copies of good checkpoints: one line,
# exit 1, no process, and zero bytes served to CRIU.
test_refusals_hand_criu_nothing() {
	keys
	local pid1 pid2 pid3
	pid1=$(start_subject r1 mem --mib 8)
	pid2=$(start_subject r2 mem --mib 8)
	pid3=$(start_subject r3 mem --mib 8)
	dump_ok signed "$pid1" --streams 2 --compression lz4 --recipient "$REC" --sign-key "$T/sign"
	dump_ok twin "$pid2" --streams 2 --compression lz4 --recipient "$REC" --sign-key "$T/sign"
	dump_ok unsigned "$pid3" --streams 2 --compression lz4 --recipient "$REC"
	local trust=(--identity "$T/id.txt" --trusted-key "$T/sign.pub")
	refused "unsigned checkpoint" "$T/ck/unsigned" r3 "${trust[@]}"
	refused "which is not a trusted key" "$T/ck/signed" r1 --identity "$T/id.txt" \
		--trusted-key "$T/other.pub"
	copy_ck signed altered
	sed -i 's/"tcp_established":false/"tcp_established":true/' "$T/ck/altered/manifest.json"
	refused "manifest was altered" "$T/ck/altered" r1 "${trust[@]}"
	copy_ck signed nomanifest
	rm "$T/ck/nomanifest/manifest.json"
	refused "no manifest.json: the trust policy" "$T/ck/nomanifest" r1 "${trust[@]}"
	copy_ck signed nosig
	rm "$T/ck/nosig/manifest.json.sig"
	refused "unsigned checkpoint" "$T/ck/nosig" r1 "${trust[@]}"
	copy_ck signed truncated
	truncate -s -100 "$T/ck/truncated/img-1.lz4.age"
	refused "(truncated)" "$T/ck/truncated" r1 "${trust[@]}"
	# From another checkpoint signed by the same key: a stream with its
	# chunk list; a chunk list alone; a stream cut to the right size.
	copy_ck signed swapped
	cp "$T/ck/twin/img-0.lz4.age" "$T/ck/twin/chunks-0.sha256" "$T/ck/swapped/"
	if [ "$(stat -c %s "$T/ck/twin/img-0.lz4.age")" = "$(stat -c %s "$T/ck/signed/img-0.lz4.age")" ]; then
		refused "chunks-0.sha256: its SHA-256 is not the one in the signed manifest" \
			"$T/ck/swapped" r1 "${trust[@]}"
	else
		refused "stream img-0.lz4.age has" "$T/ck/swapped" r1 "${trust[@]}"
	fi
	copy_ck signed swapped0
	cp "$T/ck/twin/chunks-0.sha256" "$T/ck/swapped0/"
	refused "chunks-0.sha256: its SHA-256 is not the one in the signed manifest" \
		"$T/ck/swapped0" r1 "${trust[@]}"
	copy_ck signed swapped1
	local size
	size=$(stat -c %s "$T/ck/signed/img-0.lz4.age")
	head -c "$size" "$T/ck/twin/img-0.lz4.age" >"$T/ck/swapped1/img-0.lz4.age"
	truncate -s "$size" "$T/ck/swapped1/img-0.lz4.age"
	refused "img-0.lz4.age: chunk 0 (bytes 0.." \
		"$T/ck/swapped1" r1 "${trust[@]}"
	# Two of the age file's 64 KiB chunks swapped: the chunk digest
	# refuses it under the trust policy, the AEAD tags without one.
	copy_ck signed reordered
	"$PYTHON" -c 'import sys; p=sys.argv[1]; d=bytearray(open(p,"rb").read())
at=d.index(b"\n---")+49+16; c=65536+16; a,b=at+c,at+2*c
d[a:b], d[b:b+c] = d[b:b+c], d[a:b]; open(p,"wb").write(d)' "$T/ck/reordered/img-0.lz4.age"
	refused "img-0.lz4.age: chunk 0 (bytes 0.." "$T/ck/reordered" r1 \
		"${trust[@]}"
	ANY_SERVED=1 refused "img-0.lz4.age: age: chunk 1 at offset" "$T/ck/reordered" r1 \
		--identity "$T/id.txt"
	"$CRSTREAM" keygen --output "$T/age-other.txt" >/dev/null
	refused "no identity matches" "$T/ck/signed" r1 --identity "$T/age-other.txt" \
		--trusted-key "$T/sign.pub"
	refused "the checkpoint is encrypted (age): give the identity" "$T/ck/signed" r1
	# Untouched, the same checkpoint restores.
	"$CRSTREAM" restore --path "$T/ck/signed" "${trust[@]}" >/dev/null
	verify_subject r1
}

# One byte flipped in the first, a middle and the last chunk of a stream,
# unencrypted and encrypted (uncompressed, so that a few MiB of process
# make several chunks, and stored and shard offsets coincide when not
# encrypted). Under a trust policy CRIU gets nothing: every stream is
# verified before it starts. With --no-verify-first (streaming), CRIU gets
# only chunks that verified: never a byte at or past the flipped chunk.
# And a chunk moved.
test_flipped_bytes_never_reach_criu() {
	keys
	local pid1 pid2
	pid1=$(start_subject f1 mem --mib 14)
	pid2=$(start_subject f2 mem --mib 14)
	dump_ok clear "$pid1" --streams 1 --compression none --sign-key "$T/sign"
	dump_ok secret "$pid2" --streams 1 --compression none --recipient "$REC" --sign-key "$T/sign"
	local trust=(--identity "$T/id.txt" --trusted-key "$T/sign.pub")
	local name f subj size chunks k off where
	for name in clear secret; do
		case $name in
		clear) f=img-0 subj=f1 ;;
		secret) f=img-0.age subj=f2 ;;
		esac
		size=$(stat -c %s "$T/ck/$name/$f")
		chunks=$(((size + 4194303) / 4194304))
		[ "$chunks" -ge 3 ] || fail "$name: $size bytes make only $chunks chunks"
		for k in 0 $((chunks / 2)) $((chunks - 1)); do
			off=$((k * 4194304 + 1000))
			[ "$k" = $((chunks - 1)) ] && off=$((size - 10))
			where=$name-chunk$k
			copy_ck "$name" "$where"
			flip_byte "$T/ck/$where/$f" "$off"
			refused "$f: chunk $k (bytes $((k * 4194304)).." "$T/ck/$where" "$subj" "${trust[@]}"
			# Not by luck of timing: CRIU never started (it leaves a log).
			[[ "$(json_get "$T/refused.json" error)" != *"CRIU's log"* ]] ||
				fail "$where: CRIU was started before the refusal"
			ANY_SERVED=1 refused "$f: chunk $k (bytes $((k * 4194304)).." "$T/ck/$where" "$subj" \
				"${trust[@]}" --no-verify-first
			log "$where: streaming, CRIU was served $SERVED bytes before the refusal"
			[ "$name" = secret ] || [ "$SERVED" -le $((k * 4194304)) ] ||
				fail "$where: CRIU was served $SERVED bytes, past chunk $k's start"
		done
	done
	copy_ck clear moved
	"$PYTHON" -c 'import sys; p=sys.argv[1]; d=bytearray(open(p,"rb").read()); c=4194304
d[c:2*c], d[2*c:3*c] = d[2*c:3*c], d[c:2*c]; open(p,"wb").write(d)' "$T/ck/moved/img-0"
	refused "img-0: chunk 1 (bytes 4194304..8388607) does not match" "$T/ck/moved" f1 "${trust[@]}"
	# Encrypted without a trust policy: the AEAD tag refuses the chunk.
	copy_ck secret aead
	flip_byte "$T/ck/aead/img-0.age" 5000000
	ANY_SERVED=1 refused "does not authenticate" "$T/ck/aead" f2 --identity "$T/id.txt"
	"$CRSTREAM" restore --path "$T/ck/secret" "${trust[@]}" >/dev/null
	verify_subject f2
	"$CRSTREAM" restore --path "$T/ck/clear" "${trust[@]}" --no-verify-first >/dev/null
	verify_subject f1
}

# Under a trust policy the verified stored bytes wait in $TMPDIR until
# every stream is verified: without room there, the restore is refused
# before CRIU starts, naming the directory and what it lacks; streaming
# (--no-verify-first) needs no room and restores.
test_verify_first_needs_room_in_tmpdir() {
	keys
	local pid
	pid=$(start_subject room mem --mib 8)
	dump_ok sealed "$pid" --streams 2 --compression none --recipient "$REC" --sign-key "$T/sign"
	mkdir "$T/small"
	mount -t tmpfs -o size=4m tmpfs "$T/small" || { fail "cannot mount a tmpfs"; return 1; }
	local trust=(--identity "$T/id.txt" --trusted-key "$T/sign.pub") rc=0
	TMPDIR=$T/small refused "until every stream is verified, and it has" "$T/ck/sealed" room \
		"${trust[@]}" || rc=1
	[ "$(ls -A "$T/small")" = "" ] || fail "left in the small TMPDIR: $(ls -A "$T/small")"
	TMPDIR=$T/small "$CRSTREAM" restore --path "$T/ck/sealed" "${trust[@]}" --no-verify-first \
		>/dev/null || rc=1
	umount "$T/small"
	[ "$rc" = 0 ] || { fail "see above"; return 1; }
	verify_subject room
}

# extract --path: a stored checkpoint's image files, decrypted and, under
# a trust policy, verified before they are written; a bad checkpoint
# leaves no directory behind.
test_extract_decrypts_and_verifies() {
	keys
	local pid
	pid=$(start_subject x mem --mib 8)
	dump_ok sealed "$pid" --streams 2 --compression zstd --recipient "$REC" --sign-key "$T/sign"
	"$CRSTREAM" extract --path "$T/ck/sealed" -D "$T/out" --identity "$T/id.txt" \
		--trusted-key "$T/sign.pub" --json >"$T/x.json" || fail "extract: $(cat "$T/x.json")"
	"$PYTHON" - "$T/ck/sealed/manifest.json" "$T/out" <<-'EOF' || fail "extracted files differ from the manifest"
		import json, os, sys
		m = json.load(open(sys.argv[1]))
		got = {f: os.path.getsize(os.path.join(sys.argv[2], f)) for f in os.listdir(sys.argv[2])}
		sys.exit(got != {f["name"]: f["size"] for f in m["files"]})
	EOF
	copy_ck sealed bad
	flip_byte "$T/ck/bad/img-1.zst.age" 1000
	expect_fail "img-1.zst.age: chunk 0 (bytes 0.." "$CRSTREAM" extract --path "$T/ck/bad" \
		-D "$T/bad-out" --identity "$T/id.txt" --trusted-key "$T/sign.pub"
	[ ! -e "$T/bad-out" ] || fail "a refused extract left $T/bad-out"
	expect_fail "the checkpoint is encrypted (age): give the identity" "$CRSTREAM" extract \
		--path "$T/ck/sealed" -D "$T/no-id"
	expect_fail "cannot create $T/out" "$CRSTREAM" extract --path "$T/ck/sealed" -D "$T/out" \
		--identity "$T/id.txt"
	# rm knows a sealed checkpoint's names (streams, chunk lists, signature).
	"$CRSTREAM" rm "$T/ck/sealed" >/dev/null
	[ -z "$(ls -A "$T/ck/sealed")" ] || fail "rm left: $(ls -A "$T/ck/sealed")"
}

# Key files readable by others are refused (and the process keeps
# running); keys never appear in `config show`, logs, or core dumps of
# crstream (unsanitized) taken after the dump signed and while CRIU
# restores.
test_keys_stay_secret() {
	keys
	local pid counter
	pid=$(start_subject s mem --mib 16)
	counter=$(status_get "$T/s.status" counter)
	chmod 644 "$T/sign"
	expect_fail "signing key $T/sign has mode 0644: a key file must be private" \
		"$CRSTREAM" dump "$pid" --dir "$T/ck" --name open --sign-key "$T/sign"
	chmod 600 "$T/sign"
	alive "$pid" || fail "the process died after the refused dump"
	expect_misuse "cannot be encrypted or signed" "$CRSTREAM" dump "$pid" --dir "$T/ck" --streams 0 \
		--recipient "$REC"
	# Keys from the config file: config show names the files only.
	printf '{"checkpoint": {"recipients": ["%s"], "sign_key": "%s"}, "restore": {"identities": "%s", "trusted_keys": ["%s"]}}\n' \
		"$REC" "$T/sign" "$T/id.txt" "$T/sign.pub" >"$CRSTREAM_CONFIG"
	"$CRSTREAM" config show >"$T/show"
	grep -Eq "^restore.identities +$T/id.txt " "$T/show" || fail "$(cat "$T/show")"
	"$CRSTREAM" check --dir "$T" >"$T/check" 2>&1 || true
	grep -q "dump keys: streams encrypted with age to 1 recipient; manifests signed by SHA256:" "$T/check" ||
		fail "$(cat "$T/check")"
	# Core dumps of crstream: of the dump after its last signature (under
	# gdb, stopped where it keeps CRIU's log, then gcore), and of the
	# restore while CRIU restores (gcore from CRIU's post-restore action,
	# after every age header was opened).
	gdb -q -batch -ex 'set pagination off' -ex 'break keep_log' -ex run \
		-ex "gcore $T/core-signed" -ex continue \
		--args "$CRSTREAM_PLAIN" dump "$pid" --dir "$T/ck" --name sec >"$T/dump.out" 2>&1 ||
		fail "dump under gdb: $(tail -5 "$T/dump.out")"
	wait_gone "$pid"
	cat >"$T/gcore.sh" <<-EOF
		#!/bin/sh
		[ "\$CRTOOLS_SCRIPT_ACTION" = post-restore ] || exit 0
		p=\$\$
		while [ "\$p" -gt 1 ] && [ "\$(ps -o comm= -p "\$p")" != crstream ]; do
			p=\$(ps -o ppid= -p "\$p" | tr -d ' ')
		done
		gcore -o "$T/core-restoring" "\$p" >/dev/null 2>&1
		exit 0
	EOF
	chmod +x "$T/gcore.sh"
	"$CRSTREAM_PLAIN" restore --path "$T/ck/sec" --criu-opt "--action-script=$T/gcore.sh" \
		>"$T/restore.out" 2>&1 || fail "restore: $(cat "$T/restore.out")"
	verify_subject s "$counter"
	grep -q "signature verified" "$T/restore.out" || fail "restore: $(cat "$T/restore.out")"
	chmod 644 "$T/id.txt"
	expect_fail "identity file $T/id.txt has mode 0644: a key file must be private" \
		"$CRSTREAM" restore --path "$T/ck/sec"
	chmod 600 "$T/id.txt"
	ls "$T"/core-signed "$T"/core-restoring.* >/dev/null || fail "no core dumps: $(ls "$T")"
	# The secrets, as text and as raw bytes.
	"$PYTHON" - "$T/id.txt" "$T/sign" "$T"/core-signed "$T"/core-restoring.* "$T/dump.out" "$T/restore.out" \
		"$T/ck/sec/criu-dump.log" "$T/show" "$T/check" <<-'EOF' || fail "a key is in a core dump or a log"
		import base64, sys
		def bech32_data(s):
		    cs = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
		    acc = bits = 0
		    out = bytearray()
		    for c in s.lower().split("1", 1)[1][:-6]:
		        acc = acc << 5 | cs.index(c)
		        bits += 5
		        if bits >= 8:
		            bits -= 8
		            out.append(acc >> bits & 255)
		    return bytes(out)
		idline = [l for l in open(sys.argv[1]) if l.startswith("AGE-SECRET-KEY-1")][0].strip()
		pem = open(sys.argv[2]).read().split("\n")
		blob = base64.b64decode("".join(pem[1:-2]))
		# private section: ... string "ssh-ed25519", string pk(32), string seed||pk(64)
		at = blob.rindex(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20") + 4 + 11 + 4 + 32 + 4
		secrets = {"identity text": idline.encode(), "identity (raw)": bech32_data(idline),
		           "signing key text": pem[1][20:60].encode(), "signing seed (raw)": blob[at:at + 32]}
		assert len(secrets["identity (raw)"]) == 32 and len(secrets["signing seed (raw)"]) == 32
		bad = 0
		for path in sys.argv[3:]:
		    data = open(path, "rb").read()
		    for name, s in secrets.items():
		        if s in data:
		            print(f"{name} found in {path}", file=sys.stderr)
		            bad = 1
		sys.exit(bad)
	EOF
}

# Without a trust policy nothing changes, but crstream says what it saw.
test_unsigned_checkpoints_are_called_so() {
	keys
	local pid out
	pid=$(start_subject u mem --mib 8)
	dump_ok plain "$pid" --streams 2
	out=$("$CRSTREAM" inspect "$T/ck/plain")
	grep -q "^signature: *unsigned checkpoint" <<<"$out" || fail "$out"
	"$CRSTREAM" restore --path "$T/ck/plain" >"$T/out"
	grep -q "unsigned checkpoint" "$T/out" || fail "restore said: $(cat "$T/out")"
	verify_subject u
	kill_subject u
	pid=$(start_subject u2 mem --mib 8)
	dump_ok signed "$pid" --streams 2 --sign-key "$T/sign"
	out=$("$CRSTREAM" inspect "$T/ck/signed")
	grep -q "^signature: *signed (manifest.json.sig), not checked" <<<"$out" || fail "$out"
	out=$(CRSTREAM_RESTORE_TRUSTED_KEYS=$T/sign.pub "$CRSTREAM" inspect "$T/ck/signed")
	grep -q "^signature: *signature verified (SHA256:" <<<"$out" || fail "$out"
	grep -q "^digests: *sha256 of every 4194304 bytes" <<<"$out" || fail "$out"
	out=$(CRSTREAM_RESTORE_TRUSTED_KEYS=$T/other.pub "$CRSTREAM" inspect "$T/ck/signed")
	grep -q "^signature: *REFUSED by the trust policy: signed by SHA256:" <<<"$out" || fail "$out"
	"$CRSTREAM" restore --path "$T/ck/signed" >"$T/out"
	grep -q "signed, signature not checked" "$T/out" || fail "restore said: $(cat "$T/out")"
	verify_subject u2
}

# The cryptography is a plugin (README: libcrypto would cost every dump
# 1.4 MB): a dump without keys never loads it or libcrypto (the dynamic
# loader's own log says so; the sealed dump beside it shows the log sees
# the plugin when it is loaded), and without the plugin a dump with a key
# is refused before CRIU starts, the process running on.
test_plain_dumps_never_load_the_crypto_plugin() {
	keys
	local pid f own=()
	pid=$(start_subject p mem --mib 8)
	mkdir -m 0755 "$T/noplugins"
	CRSTREAM_PLUGIN_DIR=$T/noplugins expect_fail "needs the plugin $T/noplugins/crstream-crypt.so" \
		"$CRSTREAM" dump "$pid" --dir "$T/ck" --name refused --recipient "$REC"
	alive "$pid" || fail "the process did not survive a refused dump"
	[ ! -e "$T/ck/refused" ] || fail "a refused dump left $(ls "$T/ck/refused")"
	LD_DEBUG=files LD_DEBUG_OUTPUT=$T/plain.ld "$CRSTREAM" dump "$pid" --dir "$T/ck" \
		--name plain >/dev/null || { fail "plain dump"; return 1; }
	wait_gone "$pid"
	for f in "$T"/plain.ld.*; do
		grep -q "needed by $CRSTREAM " "$f" && own+=("$f")
	done
	[ ${#own[@]} -ge 1 ] || { fail "no loader log of crstream itself"; return 1; }
	! grep -l "crstream-crypt.so\|libcrypto" "${own[@]}" ||
		fail "a dump without keys loaded the crypto plugin or libcrypto"
	pid=$(start_subject p2 mem --mib 8)
	LD_DEBUG=files LD_DEBUG_OUTPUT=$T/sealed.ld "$CRSTREAM" dump "$pid" --dir "$T/ck" \
		--name sealed --recipient "$REC" >/dev/null || { fail "sealed dump"; return 1; }
	wait_gone "$pid"
	grep -q "file=[^ ]*/crstream-crypt.so .*dynamically loaded by" "$T"/sealed.ld.* ||
		fail "the loader log does not show the sealed dump loading the plugin"
}

run_tests "$@"
