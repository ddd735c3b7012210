# crstream build. `make` builds build/crstream; `make SANITIZE=1` builds an
# ASan+UBSan variant in build-asan/. `make check` runs the unit tests.
# Integration tests and the demo are driven by scripts/ (see README).

CC      ?= cc
SANITIZE ?=
# `make V=1` shows full command lines.
Q       := $(if $(V),,@)
# The object-storage backend (libcurl, OpenSSL and their ~30 dependencies)
# is a plugin, crstream-s3.so, loaded only when an s3:// or gs:// location is
# used: loading those libraries alone costs ~6 MB of RSS.
PKGS    := libprotobuf-c liblz4 libzstd zlib libisal json-c libxxhash
S3_PKGS := libcurl openssl

ifeq ($(SANITIZE),1)
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
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread $(SANFLAGS) \
           -Isrc -I$(GEN) $(shell pkg-config --cflags $(PKGS) $(S3_PKGS))
LDFLAGS += -pthread $(SANFLAGS)
LDLIBS  += $(shell pkg-config --libs $(PKGS))
S3_LIBS := $(shell pkg-config --libs $(S3_PKGS))

PROTOS  := $(wildcard proto/*.proto)
PB_C    := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PB_O    := $(PB_C:.c=.o)

S3_SRC  := $(wildcard src/store/s3*.c src/store/sigv4.c)
S3_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(S3_SRC))
LIB_SRC := $(filter-out src/cli/main.c $(S3_SRC),$(wildcard src/*/*.c))
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

.PHONY: all check subjects clean
# Keep generated protobuf sources between builds.
.SECONDARY:
all: $(BUILD)/crstream $(BUILD)/crstream-s3.so $(BUILD)/criu-image-streamer $(UNIT_BIN)
subjects: $(SUBJ_BIN) $(TOOL_BIN)

# -rdynamic: the plugin calls back into the binary (errors, byte streams).
$(BUILD)/crstream: $(MAIN_OBJ) $(BUILD)/libcrstream.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -rdynamic -o $@ $(MAIN_OBJ) -Wl,--whole-archive $(BUILD)/libcrstream.a \
		-Wl,--no-whole-archive $(LDLIBS) -ldl

$(BUILD)/crstream-s3.so: $(S3_OBJ)
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -shared -o $@ $^ $(S3_LIBS)

# Invoked under this name, crstream behaves exactly like criu-image-streamer.
$(BUILD)/criu-image-streamer: $(BUILD)/crstream
	ln -sf crstream $@

$(BUILD)/libcrstream.a: $(LIB_OBJ)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	$(Q)protoc-c --proto_path=proto --c_out=$(GEN) $<

$(GEN)/%.pb-c.o: $(GEN)/%.pb-c.c
	@echo "  CC      $<"
	$(Q)$(CC) $(filter-out -Werror,$(CFLAGS)) -c -o $@ $<

# Position-independent everywhere: the plugin's objects need it, and one
# set of flags keeps the objects interchangeable.
$(BUILD)/obj/%.o: src/%.c $(PB_C) Makefile
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -fPIC -MMD -MP -c -o $@ $<

# Unit tests link the object-storage code in directly.
$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libcrstream.a $(S3_OBJ)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(S3_OBJ) $(BUILD)/libcrstream.a $(LDFLAGS) \
		$(LDLIBS) $(S3_LIBS) -ldl

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
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
