# segloss - one GNU Makefile. Quiet by default; V=1 prints full command lines.
#   make            build build/seglossd (and the libraries)
#   make run        start the server on port 8080
#   make test       unit tests + golden cases (in-process and over HTTP) + e2e
#   make asan       the whole suite under ASan+UBSan
#   make bench      core benchmark (Mpix/s per loss on 8x512x512)

CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
PORT    ?= 8080
OPT     ?= -O2 -g
SAN     ?=

WARN   = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
         -Wvla -Wimplicit-fallthrough -Werror
CFLAGS_ALL = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -pthread $(OPT) $(WARN) \
             -Ilib -Iproto -Iserver -MMD -MP $(CFLAGS)
LDLIBS_ALL = -lmicrohttpd -ljansson -lz -lm -pthread $(LDLIBS)
ifeq ($(SAN),1)
CFLAGS_ALL += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS    += -fsanitize=address,undefined
endif

ifeq ($(V),1)
Q =
else
Q = @
endif

LIB_SRC    := $(wildcard lib/*.c)
PROTO_SRC  := $(wildcard proto/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
PROTO_OBJ  := $(PROTO_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/proto/openapi_blob.o
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

LIBSEGLOSS := $(BUILD)/libsegloss.a
LIBPROTO   := $(BUILD)/libsegloss_proto.a
LIBSERVER  := $(BUILD)/libseglossd.a
SEGLOSSD   := $(BUILD)/seglossd
GOLDEN     := $(BUILD)/tests/golden
E2E        := $(BUILD)/tests/e2e
BENCH      := $(BUILD)/tests/bench
GOLDEN_DIR ?= ../shared/golden

# keep test objects: they are not throwaway intermediates
.SECONDARY:

.PHONY: all deps test unit golden e2e bench asan fuzz format format-check run install clean

all: deps $(SEGLOSSD)

# Installs missing Debian packages (as root), or prints the one line to run.
deps:
	$(Q)sh .ci/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/proto/openapi_blob.o: proto/openapi_blob.S proto/openapi.json
	@mkdir -p $(dir $@)
	$(Q)$(CC) -c $< -o $@

$(LIBSEGLOSS): $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
$(LIBPROTO): $(PROTO_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
$(LIBSERVER): $(SERVER_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^ $(if $(SERVER_OBJ),,&& true)

LINK_LIBS = $(LIBSERVER) $(LIBPROTO) $(LIBSEGLOSS)

$(SEGLOSSD): $(BUILD)/obj/server/main.o $(LINK_LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS) $^ -o $@ $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS) $^ -o $@ $(LDLIBS_ALL)

$(GOLDEN): $(BUILD)/obj/tests/golden/golden.o $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS) $^ -o $@ $(LDLIBS_ALL) -lcurl

$(E2E): $(BUILD)/obj/tests/e2e/e2e.o $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS) $^ -o $@ $(LDLIBS_ALL) -lcurl

$(BENCH): $(BUILD)/obj/tests/bench/bench.o $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS) $^ -o $@ $(LDLIBS_ALL)

test: deps $(SEGLOSSD) $(UNIT_BIN) $(GOLDEN) $(E2E)
	$(Q)sh tests/run.sh $(BUILD) $(GOLDEN_DIR)

unit: deps $(UNIT_BIN)
	$(Q)sh tests/run.sh $(BUILD) $(GOLDEN_DIR) unit

golden: deps $(SEGLOSSD) $(GOLDEN)
	$(Q)sh tests/run.sh $(BUILD) $(GOLDEN_DIR) golden

e2e: deps $(SEGLOSSD) $(E2E)
	$(Q)sh tests/run.sh $(BUILD) $(GOLDEN_DIR) e2e

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=1 OPT="-O1 -g" test

bench: deps $(BENCH)
	$(Q)$(BENCH)

run: all
	$(SEGLOSSD) --port $(PORT)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(SEGLOSSD) $(DESTDIR)$(PREFIX)/bin/seglossd

FORMAT_FILES = $(wildcard lib/*.[ch] proto/*.[ch] server/*.[ch] tests/*.h tests/*/*.[ch])
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
