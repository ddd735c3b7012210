# crstream build. `make` builds build/crstream, its plugin, the man pages
# and the unit tests; `make SANITIZE=1` builds an ASan+UBSan variant in
# build-asan/. `make check` runs the unit tests. `make install` installs
# under PREFIX (default /usr/local), staged under DESTDIR if given; `make
# uninstall` removes what it installed. `make FUZZ=1 fuzz` builds the
# libFuzzer harnesses of tests/fuzz/ with clang into build-fuzz/ (`FUZZ=cov`:
# a coverage-instrumented variant in build-fuzzcov/, for tests/fuzz/run.sh
# --coverage). Integration tests and the demo are driven by scripts/ (see
# README).

CC      ?= cc
SANITIZE ?=
# `make V=1` shows full command lines.
Q       := $(if $(V),,@)
# The object-storage backend (libcurl, OpenSSL and their ~30 dependencies)
# is a plugin, crstream-s3.so, loaded only when an s3:// or gs:// location is
# used: loading those libraries alone costs ~6 MB of RSS.
PKGS    := libprotobuf-c liblz4 libzstd zlib libisal json-c libxxhash
S3_PKGS := libcurl openssl
# Encryption and signatures (age, SSHSIG) are the plugin crstream-crypt.so,
# loaded only when a command uses a key: libcrypto alone costs ~1.4 MB of
# RSS at startup.
CRYPT_PKGS := libcrypto
# The daemon (gRPC's core, SQLite, libsystemd) is a plugin as well,
# crstream-daemon.so, loaded by `crstream daemon` and by the commands that
# talk to it: gRPC alone costs ~8 MB of RSS and ~0.1 s of start-up. Its
# worker (src/daemon/worker.c, which runs the daemon's dumps and restores)
# is part of the binary and loads none of it.
DAEMON_PKGS := grpc sqlite3 libsystemd

# Where `make install` puts things. The plugin and libexec directories are
# compiled in (build/gen/paths.h): building with one PREFIX and installing
# with another rebuilds what depends on them.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
PLUGINDIR  ?= $(LIBDIR)/crstream
LIBEXECDIR ?= $(PREFIX)/libexec/crstream
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/crstream
# bash-completion looks in $XDG_DATA_DIRS (/usr/local/share, /usr/share).
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
# The provisioning cache of scripts/provision-criu.sh, where crstream looks
# for CRIU after PATH.
CACHEDIR   ?= /var/cache/crstream

ifeq ($(FUZZ),1)
# libFuzzer needs clang; the library is instrumented for coverage feedback
# (fuzzer-no-link), the harnesses link libFuzzer's main.
CC      := clang
BUILD   ?= build-fuzz
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer
# A 64 KiB decoder input buffer instead of 1 MiB: small inputs cross
# refills, and ASan serves it without an mmap per decoder.
FUZZ_DEFS := -DCODEC_IN_CAP='((size_t)64 << 10)' -DAGE_IN_CAP='((size_t)80 << 10)'
OPT     := -O1
else ifeq ($(FUZZ),cov)
# Source-based coverage of the parsers the harnesses reach (llvm-cov).
CC      := clang
BUILD   ?= build-fuzzcov
SANFLAGS := -fsanitize=fuzzer-no-link -fprofile-instr-generate -fcoverage-mapping
FUZZ_DEFS := -DCODEC_IN_CAP='((size_t)64 << 10)' -DAGE_IN_CAP='((size_t)80 << 10)'
OPT     := -O1
else ifeq ($(SANITIZE),1)
BUILD   ?= build-asan
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT     := -O1
else
BUILD   ?= build
SANFLAGS :=
OPT     := -O2
endif

GEN     := $(BUILD)/gen
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread $(SANFLAGS) $(FUZZ_DEFS) \
           -Isrc -I$(GEN) -I$(GEN)/rpc $(shell pkg-config --cflags $(PKGS) $(S3_PKGS) $(DAEMON_PKGS))
LDFLAGS += -pthread $(SANFLAGS)
LDLIBS  += $(shell pkg-config --libs $(PKGS))
S3_LIBS := $(shell pkg-config --libs $(S3_PKGS))
CRYPT_LIBS := $(shell pkg-config --libs $(CRYPT_PKGS))
DAEMON_LIBS := $(shell pkg-config --libs $(DAEMON_PKGS))

PROTOS  := $(wildcard proto/*.proto)
PB_C    := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PB_O    := $(PB_C:.c=.o)

S3_SRC  := $(wildcard src/store/s3*.c src/store/sigv4.c)
S3_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(S3_SRC))
CRYPT_SRC := $(filter-out src/crypt/crypt_load.c,$(wildcard src/crypt/*.c))
CRYPT_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(CRYPT_SRC))
# The daemon's messages (proto/rpc/) are compiled into its plugin only.
RPC_PROTOS := $(wildcard proto/rpc/*.proto)
RPC_PB_C := $(patsubst proto/rpc/%.proto,$(GEN)/rpc/%.pb-c.c,$(RPC_PROTOS))
DAEMON_SRC := $(filter-out src/daemon/worker.c,$(wildcard src/daemon/*.c))
DAEMON_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(DAEMON_SRC)) $(RPC_PB_C:.c=.o)
LIB_SRC := $(filter-out src/cli/main.c $(S3_SRC) $(CRYPT_SRC) $(DAEMON_SRC),$(wildcard src/*/*.c))
LIB_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(PB_O)
MAIN_OBJ := $(BUILD)/obj/cli/main.o

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
# Test subjects are the processes CRIU checkpoints in the integration tests.
# They are built without sanitizers: checkpointing ASan's shadow memory
# would only slow the tests down.
SUBJ_SRC := $(wildcard tests/subjects/*.c)
SUBJ_BIN := $(patsubst tests/subjects/%.c,build/subjects/%,$(SUBJ_SRC))
# Test tools (subreaper, image comparison) likewise stay unsanitized.
# faultinject is an LD_PRELOAD shim (a shared object) for fault tests.
SHIM_SRC := tests/tools/faultinject.c
TOOL_SRC := $(filter-out $(SHIM_SRC),$(wildcard tests/tools/*.c))
TOOL_BIN := $(patsubst tests/tools/%.c,build/tools/%,$(TOOL_SRC)) \
            $(patsubst tests/tools/%.c,build/tools/%.so,$(SHIM_SRC))

# Man pages: man/NAME.SECTION.scd, turned into roff by scdoc (man/README.md
# says how to add one). Pages documenting several commands get .so aliases
# (ALIAS:PAGE): criu-image-streamer(1) documents capture, serve and extract,
# crstream-run(1) manage, jobs and kill.
MAN_SRC  := $(wildcard man/*.scd)
MAN_OUT  := $(patsubst man/%.scd,$(BUILD)/man/%,$(MAN_SRC))
MAN_ALIAS_PAIRS := crstream-capture.1:criu-image-streamer.1 crstream-serve.1:criu-image-streamer.1 \
	crstream-extract.1:criu-image-streamer.1 crstream-manage.1:crstream-run.1 \
	crstream-jobs.1:crstream-run.1 crstream-kill.1:crstream-run.1
MAN_ALIASES := $(foreach p,$(MAN_ALIAS_PAIRS),$(word 1,$(subst :, ,$(p))))
MAN_ALIAS_OUT := $(addprefix $(BUILD)/man/,$(MAN_ALIASES))

PROGRAMS := $(BUILD)/crstream $(BUILD)/crstream-s3.so $(BUILD)/crstream-crypt.so \
            $(BUILD)/crstream-daemon.so \
            $(BUILD)/criu-image-streamer

# libFuzzer harnesses (tests/fuzz/README.md). fuzz_codec.c is built once
# per codec, each with its own corpus.
FUZZ_CODECS := none lz4 zstd gzip zlib
FUZZ_SRC := $(filter-out tests/fuzz/fuzz_codec.c,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_HDR := $(wildcard tests/fuzz/*.h)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC)) \
            $(patsubst %,$(BUILD)/fuzz/fuzz_codec_%,$(FUZZ_CODECS))
FUZZ_LINK := -fsanitize=fuzzer $(S3_OBJ) $(CRYPT_OBJ) $(BUILD)/libcrstream.a $(LDFLAGS) \
             $(LDLIBS) $(S3_LIBS) $(CRYPT_LIBS) -ldl

.PHONY: all programs man check subjects clean install uninstall FORCE fuzz
# Keep generated protobuf sources between builds.
.SECONDARY:
all: programs man $(UNIT_BIN)
programs: $(PROGRAMS)
man: $(MAN_OUT) $(MAN_ALIAS_OUT)
subjects: $(SUBJ_BIN) $(TOOL_BIN)

# Rewritten only when a path changes, so that only then things rebuild.
$(GEN)/paths.h: FORCE
	@mkdir -p $(GEN)
	$(Q)printf '%s\n' '/* Generated by the Makefile from its install paths. */' \
		'#define CRSTREAM_PLUGIN_DIR_BUILTIN "$(PLUGINDIR)"' \
		'#define CRSTREAM_LIBEXEC_DIR "$(LIBEXECDIR)"' \
		'#define CRSTREAM_CACHE_DIR_DEFAULT "$(CACHEDIR)"' \
		'/* $(DOCDIR) */' >$@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

# The pages name the install paths (the plugin directory, the cache).
$(BUILD)/man/%: man/%.scd $(GEN)/paths.h
	@mkdir -p $(dir $@)
	@echo "  SCDOC   $@"
	$(Q)sed -e 's|@PLUGINDIR@|$(PLUGINDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' \
		-e 's|@CACHEDIR@|$(CACHEDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' $< | scdoc >$@.tmp
	$(Q)mv -f $@.tmp $@

$(MAN_ALIAS_OUT): Makefile
	@mkdir -p $(dir $@)
	$(Q)echo '.so man1/$(word 2,$(subst :, ,$(filter $(notdir $@):%,$(MAN_ALIAS_PAIRS))))' >$@

# -rdynamic: the plugin calls back into the binary (errors, byte streams).
$(BUILD)/crstream: $(MAIN_OBJ) $(BUILD)/libcrstream.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -rdynamic -o $@ $(MAIN_OBJ) -Wl,--whole-archive $(BUILD)/libcrstream.a \
		-Wl,--no-whole-archive $(LDLIBS) -ldl

$(BUILD)/crstream-s3.so: $(S3_OBJ)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -shared -o $@ $^ $(S3_LIBS)

$(BUILD)/crstream-crypt.so: $(CRYPT_OBJ)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -shared -o $@ $^ $(CRYPT_LIBS)

$(BUILD)/crstream-daemon.so: $(DAEMON_OBJ)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -shared -o $@ $^ $(DAEMON_LIBS)

# Invoked under this name, crstream behaves exactly like criu-image-streamer.
$(BUILD)/criu-image-streamer: $(BUILD)/crstream
	ln -sf crstream $@

$(BUILD)/libcrstream.a: $(LIB_OBJ)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	$(Q)protoc-c --proto_path=proto --c_out=$(GEN) $<

$(GEN)/rpc/%.pb-c.c $(GEN)/rpc/%.pb-c.h: proto/rpc/%.proto
	@mkdir -p $(GEN)/rpc
	$(Q)protoc-c --proto_path=proto/rpc --c_out=$(GEN)/rpc $<

$(GEN)/%.pb-c.o: $(GEN)/%.pb-c.c
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(filter-out -Werror,$(CFLAGS)) -fPIC -c -o $@ $<

# Position-independent everywhere: the plugin's objects need it, and one
# set of flags keeps the objects interchangeable.
$(BUILD)/obj/%.o: src/%.c $(PB_C) $(RPC_PB_C) $(GEN)/paths.h Makefile
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -MMD -MP -c -o $@ $<

# Unit tests link the plugins' code in directly.
$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libcrstream.a $(S3_OBJ) $(CRYPT_OBJ)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Itests/unit -o $@ $< $(S3_OBJ) $(CRYPT_OBJ) $(BUILD)/libcrstream.a \
		$(LDFLAGS) $(LDLIBS) $(S3_LIBS) $(CRYPT_LIBS) -ldl

# The catalog's test links the catalog (a part of the daemon plugin) in.
$(BUILD)/tests/test_catalog: tests/unit/test_catalog.c tests/unit/unit.h $(BUILD)/libcrstream.a \
		$(BUILD)/obj/daemon/catalog.o
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/obj/daemon/catalog.o \
		$(BUILD)/libcrstream.a $(LDFLAGS) $(LDLIBS) $(shell pkg-config --libs sqlite3)

fuzz: $(FUZZ_BIN)

$(BUILD)/fuzz/fuzz_codec_%: tests/fuzz/fuzz_codec.c $(FUZZ_HDR) $(BUILD)/libcrstream.a $(S3_OBJ) $(CRYPT_OBJ)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Itests/fuzz -DFUZZ_CODEC='"$*"' -o $@ $< $(FUZZ_LINK)

# The daemon's request checks, with the messages they take; no libgrpc.
FUZZ_DAEMON_OBJ := $(BUILD)/obj/daemon/requests.o $(BUILD)/obj/daemon/rpc_status.o $(RPC_PB_C:.c=.o)
$(BUILD)/fuzz/fuzz_daemon_request: tests/fuzz/fuzz_daemon_request.c $(FUZZ_HDR) $(BUILD)/libcrstream.a \
		$(S3_OBJ) $(CRYPT_OBJ) $(FUZZ_DAEMON_OBJ)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Itests/fuzz -o $@ $< $(FUZZ_DAEMON_OBJ) $(FUZZ_LINK)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_HDR) $(BUILD)/libcrstream.a $(S3_OBJ) $(CRYPT_OBJ)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Itests/fuzz -o $@ $< $(FUZZ_LINK)

build/subjects/%: tests/subjects/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -pthread -o $@ $<

build/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -pthread -o $@ $<

build/tools/%.so: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -pthread -shared -fPIC -o $@ $< -ldl

# bench/remote.sh's network delay (a bench tool, not part of crstream).
build/tools/linkem: bench/linkem.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -o $@ $<

# Exit status 77 means "skipped" (e.g. live tests without a server).
check: all
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t || [ $$? -eq 77 ]; done

clean:
	rm -rf build build-asan build-fuzz build-fuzzcov

# ---- install ----
# The systemd units; ExecStart names the installed binary (@BINDIR@).
UNITS := $(wildcard systemd/*.service systemd/*.socket)
INSTALL ?= install

install: programs man
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(LIBEXECDIR)/lib \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(DOCDIR)/examples
	$(INSTALL) -m 755 $(BUILD)/crstream $(DESTDIR)$(BINDIR)/crstream
	ln -sf crstream $(DESTDIR)$(BINDIR)/criu-image-streamer
	$(INSTALL) -m 644 $(BUILD)/crstream-s3.so $(DESTDIR)$(PLUGINDIR)/crstream-s3.so
	$(INSTALL) -m 644 $(BUILD)/crstream-crypt.so $(DESTDIR)$(PLUGINDIR)/crstream-crypt.so
	$(INSTALL) -m 644 $(BUILD)/crstream-daemon.so $(DESTDIR)$(PLUGINDIR)/crstream-daemon.so
	$(INSTALL) -m 755 scripts/provision-criu.sh $(DESTDIR)$(LIBEXECDIR)/provision-criu
	$(INSTALL) -m 644 scripts/lib/packages.sh $(DESTDIR)$(LIBEXECDIR)/lib/packages.sh
	$(INSTALL) -m 644 $(filter %.1,$(MAN_OUT) $(MAN_ALIAS_OUT)) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 644 $(filter %.5,$(MAN_OUT)) $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 644 completion/crstream.bash $(DESTDIR)$(BASHCOMPDIR)/crstream
	$(INSTALL) -m 644 completion/crstream.bash $(DESTDIR)$(BASHCOMPDIR)/criu-image-streamer
	$(INSTALL) -m 644 doc/config.example.json $(DESTDIR)$(DOCDIR)/examples/config.json
	$(INSTALL) -d $(DESTDIR)$(SYSTEMDUNITDIR)
	$(foreach u,$(UNITS),sed 's|@BINDIR@|$(BINDIR)|g' $(u) >$(DESTDIR)$(SYSTEMDUNITDIR)/$(notdir $(u)) && \
		chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$(notdir $(u)) &&) true

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/crstream $(DESTDIR)$(BINDIR)/criu-image-streamer \
		$(DESTDIR)$(PLUGINDIR)/crstream-s3.so $(DESTDIR)$(PLUGINDIR)/crstream-crypt.so \
		$(DESTDIR)$(PLUGINDIR)/crstream-daemon.so \
		$(DESTDIR)$(LIBEXECDIR)/provision-criu \
		$(DESTDIR)$(LIBEXECDIR)/lib/packages.sh \
		$(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(filter %.1,$(MAN_OUT) $(MAN_ALIAS_OUT)))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(filter %.5,$(MAN_OUT)))) \
		$(DESTDIR)$(BASHCOMPDIR)/crstream $(DESTDIR)$(BASHCOMPDIR)/criu-image-streamer \
		$(DESTDIR)$(DOCDIR)/examples/config.json \
		$(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(notdir $(UNITS)))
	-rmdir $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(LIBEXECDIR)/lib $(DESTDIR)$(LIBEXECDIR) \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
