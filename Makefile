# segloss - one GNU Makefile. Quiet by default; V=1 prints full command lines.
#   make            build build/seglossd (and the libraries)
#   make run        start the server on port 8080
#   make test       unit tests + golden cases (in-process and over HTTP) + e2e + the clients
#                   + challenges + the browser tests + the PostgreSQL tests (test-pg)
#   make test T=PATTERN  only the tests whose names match (make test T=lovasz; tests/filter.h);
#                   also for unit, golden, e2e, clients, challenges, browser, test-pg, valgrind
#                   and asan
#   make challenges the challenge routes over HTTP on a temporary data directory
#   make js         the JavaScript client (clients/js) under node --test; make test runs it too
#   make test-pg    the store, challenge and replica tests on PostgreSQL (a throwaway server
#                   each test program starts; make test runs them too)
#   make browser    the HTML pages (leaderboards, the scoring report) in headless Chromium
#   make docs-shots regenerates the README's screenshots (docs/challenge.png, docs/report.png)
#   make asan       the whole suite under ASan+UBSan
#   make bench      core benchmark (Mpix/s per loss on 8x512x512)
#   make bench-challenge  the challenges' targets: submission cost, leaderboard, re-score
#   make bench-compare  seglossd against a FastAPI + PyTorch service, wrk over loopback
#   make bench-mc   multiclass seglossd against PyTorch on one thread, issue 18's two batches
#   make bench-lovasz  Lovász-Softmax C=19 512x1024 against the reference on one thread
#   make bench-parallel  segloss score --parallel 1/6 through nginx, 3 replicas against 1
#   make bench-cluster   challenge submissions/s through nginx, 3 replicas on PostgreSQL vs 1
#   make fuzz       libFuzzer targets for FUZZ_SECONDS each (clang), from the corpus kept in
#                   tests/fuzz/corpus; make fuzz-merge folds new finds into it, make fuzz-long
#                   runs a long campaign in the background
#   make valgrind   the suite under valgrind memcheck
#   make soak       a bounded load/soak run against a live server on loopback
#   make test-cluster  3 replicas behind nginx on loopback: kill and drain under load
#   make test-image    the Docker image and the compose stack, built and tested (as root)

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
LDLIBS_ALL = -lmicrohttpd -ljansson -lsqlite3 -lpq -lpng16 -ldeflate -lzstd -lz -lm -pthread $(LDLIBS)
# libpq's header (Debian's libpq-dev puts it under postgresql/)
CFLAGS_ALL += $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
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

CLI_SRC    := $(wildcard clients/cli/*.c)
CLI_OBJ    := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)

LIBSEGLOSS := $(BUILD)/libsegloss.a
LIBPROTO   := $(BUILD)/libsegloss_proto.a
LIBSERVER  := $(BUILD)/libseglossd.a
SEGLOSSD   := $(BUILD)/seglossd
SEGLOSS    := $(BUILD)/segloss
GOLDEN     := $(BUILD)/tests/golden
E2E        := $(BUILD)/tests/e2e
BENCH      := $(BUILD)/tests/bench
GOLDEN_DIR ?= tests/golden/cases
T           =
RUN_TESTS   = SEGLOSS_TEST='$(T)' sh tests/run.sh

# keep test objects: they are not throwaway intermediates
.SECONDARY:

.PHONY: all deps test unit golden e2e clients challenges bench bench-compare asan fuzz format format-check run \
        install clean

all: deps $(SEGLOSSD) $(SEGLOSS)

# Installs missing Debian packages (as root), or prints the one line to run.
deps:
	$(Q)sh .ci/deps.sh

$(BUILD)/obj/%.o: %.c | deps
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

# the CLI: libcurl for HTTP, proto/ for .npy headers, lib/ for metrics from summed counts
$(SEGLOSS): $(CLI_OBJ) $(LIBPROTO) $(LIBSEGLOSS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS) $^ -o $@ $(LDLIBS_ALL) -lcurl

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

# proto/'s stages on a large /v1/score body (tests/bench/proto_bench.c): make proto-bench
# [PROTO_BENCH_ARGS="--reps 30 body.json"]
PROTO_BENCH := $(BUILD)/tests/proto_bench
$(PROTO_BENCH): $(BUILD)/obj/tests/bench/proto_bench.o $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS) $^ -o $@ $(LDLIBS_ALL)

# the leaderboard page's render (tests/bench/page_bench.c), then GET /challenges/{c} over HTTP on
# a data directory of 1,000 participants (tests/bench/page_bench.py): make bench-pages
# [PAGE_BENCH_ARGS="--participants 1000 --subs 5 --reps 51"]
PAGE_BENCH := $(BUILD)/tests/page_bench
$(PAGE_BENCH): $(BUILD)/obj/tests/bench/page_bench.o $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS) $^ -o $@ $(LDLIBS_ALL)

.PHONY: bench-pages
bench-pages: deps $(PAGE_BENCH) $(SEGLOSSD)
	$(Q)$(PAGE_BENCH) $(PAGE_BENCH_ARGS)
	$(Q)/usr/bin/python3 tests/bench/page_bench.py --seglossd $(SEGLOSSD)

# The browser tests' Chromium (not needed to build or run): installed by the targets that run
# them, unless SEGLOSS_NO_BROWSER=1 skips those tests (tests/run.sh)
BROWSER_DEPS = [ "$(SEGLOSS_NO_BROWSER)" = 1 ] || SEGLOSS_PKGS=chromium sh .ci/deps.sh

test: deps $(SEGLOSSD) $(SEGLOSS) $(UNIT_BIN) $(GOLDEN) $(E2E)
	$(Q)$(BROWSER_DEPS)
	$(Q)$(RUN_TESTS) $(BUILD) $(GOLDEN_DIR)

unit: deps $(UNIT_BIN)
	$(Q)$(RUN_TESTS) $(BUILD) $(GOLDEN_DIR) unit

golden: deps $(SEGLOSSD) $(GOLDEN)
	$(Q)$(RUN_TESTS) $(BUILD) $(GOLDEN_DIR) golden

e2e: deps $(SEGLOSSD) $(E2E)
	$(Q)$(RUN_TESTS) $(BUILD) $(GOLDEN_DIR) e2e

clients: deps $(SEGLOSSD) $(SEGLOSS)
	$(Q)$(RUN_TESTS) $(BUILD) $(GOLDEN_DIR) clients

# the JavaScript client (clients/js) under node --test against seglossd (tests/clients/js.sh)
.PHONY: js
js: deps $(SEGLOSSD)
	$(Q)$(RUN_TESTS) $(BUILD) $(GOLDEN_DIR) js

# challenges (CHALLENGES.md) over HTTP against seglossd on a temporary data directory
challenges: deps $(SEGLOSSD) $(SEGLOSS)
	$(Q)$(RUN_TESTS) $(BUILD) $(GOLDEN_DIR) challenges

# the store's unit tests and the challenge tests on PostgreSQL, and several seglossd on one
# database (tests/pg/): each program starts its own server with initdb and pg_ctl in a temporary
# directory (as an unprivileged user when run as root) and stops it at the end
.PHONY: test-pg
test-pg: deps $(SEGLOSSD) $(UNIT_BIN)
	$(Q)$(RUN_TESTS) $(BUILD) $(GOLDEN_DIR) pg

# the leaderboard pages and the scoring report in Debian's headless chromium, driven over the
# DevTools protocol (tests/browser/test_browser.py); SEGLOSS_NO_BROWSER=1 skips it loudly
.PHONY: browser docs-shots
browser: deps $(SEGLOSSD)
	$(Q)$(BROWSER_DEPS)
	$(Q)$(RUN_TESTS) $(BUILD) $(GOLDEN_DIR) browser

# the README's screenshots, taken by the browser tests (SEGLOSS_DOCS_SHOTS): commit docs/*.png
docs-shots: deps $(SEGLOSSD)
	$(Q)$(BROWSER_DEPS)
	$(Q)mkdir -p docs
	$(Q)SEGLOSS_DOCS_SHOTS=docs SEGLOSS_TEST=browser/docs_shots \
	    sh tests/run.sh $(BUILD) $(GOLDEN_DIR) browser
	$(Q)ls -l docs/*.png

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=1 OPT="-O1 -g" T='$(T)' test

bench: deps $(BENCH)
	$(Q)$(BENCH)

# The challenges' targets (tests/bench/challenge_bench.py): a submission against /v1/score, a
# leaderboard of 1,000 participants, a re-score under wrk load.
.PHONY: bench-challenge
bench-challenge: deps $(SEGLOSSD)
	$(Q)SEGLOSS_PKGS="wrk python3-numpy" sh .ci/deps.sh
	$(Q)/usr/bin/python3 tests/bench/challenge_bench.py --seglossd $(SEGLOSSD)

# segloss score --parallel 1 and 6 on 1,000 images through nginx with 3 and with 1 seglossd
# replicas (tests/bench/parallel_bench.py, the cluster test's loopback topology; needs nginx).
.PHONY: bench-parallel
bench-parallel: deps $(SEGLOSSD) $(SEGLOSS)
	$(Q)SEGLOSS_PKGS="nginx python3-numpy" sh .ci/deps.sh
	$(Q)/usr/bin/python3 tests/bench/parallel_bench.py --seglossd $(SEGLOSSD) --segloss $(SEGLOSS)

# Challenge submissions per second through nginx: 3 seglossd replicas on one PostgreSQL against 1
# (and 1 on SQLite), the same data (tests/bench/cluster_bench.py; needs nginx and postgresql).
.PHONY: bench-cluster
bench-cluster: deps $(SEGLOSSD)
	$(Q)SEGLOSS_PKGS="nginx postgresql python3-numpy" sh .ci/deps.sh
	$(Q)/usr/bin/python3 tests/bench/cluster_bench.py --seglossd $(SEGLOSSD)

# Multiclass end to end against PyTorch on one thread (tests/bench/mc_compare.py): issue 18's
# 2x19x512x1024 and 4x4x512x512 batches, values checked within 1e-5, elapsed_ms and wall time
.PHONY: bench-mc
bench-mc: deps $(SEGLOSSD)
	$(Q)SEGLOSS_PKGS="python3-torch python3-numpy" sh .ci/deps.sh
	$(Q)/usr/bin/python3 tests/bench/mc_compare.py --seglossd $(SEGLOSSD)

# Lovász-Softmax on 1x19x512x1024 logits against the reference (Berman et al.'s PyTorch
# lovasz_softmax) on one thread, in one run (tests/bench/lovasz_compare.py; the reference file is
# not in the repository: LOVASZ_REF=path/to/lovasz_losses.py checks and times it, else its
# transcription in the script is timed).
.PHONY: bench-lovasz
bench-lovasz: deps $(SEGLOSSD)
	$(Q)SEGLOSS_PKGS="python3-torch python3-numpy" sh .ci/deps.sh
	$(Q)/usr/bin/python3 tests/bench/lovasz_compare.py --seglossd $(SEGLOSSD) \
	    $(if $(LOVASZ_REF),--reference $(LOVASZ_REF))

.PHONY: proto-bench
proto-bench: deps $(PROTO_BENCH)
	$(Q)$(PROTO_BENCH) $(PROTO_BENCH_ARGS)

# End-to-end comparison with a FastAPI + PyTorch service on the same bodies (wrk over loopback;
# tests/bench/compare/README.md). Installs its Debian packages as root, like deps.
COMPARE_PKGS = python3-torch python3-fastapi python3-uvicorn python3-numpy python3-uvloop \
               python3-httptools wrk
bench-compare: deps $(SEGLOSSD)
	$(Q)SEGLOSS_PKGS="$(COMPARE_PKGS)" sh .ci/deps.sh
	$(Q)bash tests/bench/compare/run.sh $(SEGLOSSD)

run: all
	$(SEGLOSSD) --port $(PORT) --data-dir var

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(SEGLOSSD) $(DESTDIR)$(PREFIX)/bin/seglossd
	install -m 755 $(SEGLOSS) $(DESTDIR)$(PREFIX)/bin/segloss
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 644 docs/man/segloss.1 $(DESTDIR)$(PREFIX)/share/man/man1/segloss.1
	install -m 644 docs/man/seglossd.8 $(DESTDIR)$(PREFIX)/share/man/man8/seglossd.8
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 644 clients/cli/segloss.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/segloss

FORMAT_FILES = $(wildcard lib/*.[ch] proto/*.[ch] server/*.[ch] clients/cli/*.[ch] tests/*.h \
                 tests/*/*.[ch])
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- fuzz: libFuzzer targets (tests/fuzz/fuzz_*.c) built with clang under ASan+UBSan -------
#   Each target fuzz_NAME keeps its corpus in tests/fuzz/corpus/NAME/ (small files, minimized
#   with -merge=1, committed), so every run starts where the earlier ones stopped.
#   make fuzz [FUZZ_SECONDS=10]   replays each target's repository corpus and the golden seeds
#       (tests/fuzz/seeds.py), then fuzzes it that long; new finds go to $(BUILD)/fuzz/corpus/NAME
#       (never the repository); fails when a target crashes (input in $(BUILD)/fuzz/artifacts).
#   make fuzz-merge               merges $(BUILD)/fuzz/corpus/NAME and $(BUILD)/fuzz/long/corpus/NAME
#       into tests/fuzz/corpus/NAME with -merge=1 (rebuilt minimal: only inputs that add coverage
#       beyond the golden seeds, which every run regenerates, each at most FUZZ_MERGE_MAX_LEN
#       bytes): commit it.
#   make fuzz-long [FUZZ_LONG_SECONDS=1800] [FUZZ_LONG_JOBS=1]   runs every target that long in
#       the background (nohup; FUZZ_LONG_JOBS at once), logging to $(BUILD)/fuzz/long/fuzz_NAME.log
#       and its finds to $(BUILD)/fuzz/long/corpus/NAME; then make fuzz-merge.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 10
FUZZ_LONG_SECONDS ?= 1800
FUZZ_LONG_JOBS ?= 1
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_REPO    := tests/fuzz/corpus
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)
FUZZ_OBJ     := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o) $(PROTO_SRC:%.c=$(FUZZ_DIR)/obj/%.o) \
                $(FUZZ_DIR)/obj/proto/openapi_blob.o
FUZZ_CFLAGS   = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -pthread -O1 -g \
                $(filter-out -Werror,$(WARN)) -Ilib -Iproto -MMD -MP -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_SAN      = -fsanitize=fuzzer,address,undefined
# the targets whose inputs are JSON text take tests/fuzz/json.dict
FUZZ_JSON     = spec|weightmap|multipart|rle|jscan|chal_config|chal_json|chal_parts|chal_ids
# libFuzzer's flags for every run: 10 s an input at most, 2 GiB, stats at the end
FUZZ_FLAGS    = -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
# the repository corpus stays small: its inputs are at most FUZZ_MERGE_MAX_LEN bytes (the golden
# seeds, regenerated on every run, hold the large bodies), and its merge keeps the inputs that
# add edges, not every hit-count bucket (-use_counters=0: 4x fewer files, the same edges)
FUZZ_MERGE_MAX_LEN ?= 4096
FUZZ_MERGE_FLAGS   = -merge=1 -use_counters=0 -max_len=$(FUZZ_MERGE_MAX_LEN)

$(FUZZ_DIR)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/obj/proto/openapi_blob.o: proto/openapi_blob.S proto/openapi.json
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) -c $< -o $@

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_OBJ)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) $^ -o $@ -ljansson -lpng16 -ldeflate -lzstd -lz -lm -pthread

.PHONY: fuzz-seeds fuzz-merge fuzz-long
fuzz-seeds:
	$(Q)rm -rf $(FUZZ_DIR)/seeds && python3 tests/fuzz/seeds.py $(GOLDEN_DIR) $(FUZZ_DIR)/seeds

# the first corpus directory is where libFuzzer writes its finds: the build dir's
fuzz: $(FUZZ_BINS) fuzz-seeds
	$(Q)status=0; for t in $(FUZZ_TARGETS); do \
	    c=$${t#fuzz_}; log=$(FUZZ_DIR)/$$t.log; \
	    mkdir -p $(FUZZ_DIR)/corpus/$$c $(FUZZ_DIR)/seeds/$$c $(FUZZ_REPO)/$$c $(FUZZ_DIR)/artifacts; \
	    d=; case $$c in $(FUZZ_JSON)) d=-dict=tests/fuzz/json.dict ;; esac; \
	    $(FUZZ_DIR)/$$t $$d -max_total_time=$(FUZZ_SECONDS) $(FUZZ_FLAGS) \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
	        $(FUZZ_DIR)/corpus/$$c $(FUZZ_REPO)/$$c $(FUZZ_DIR)/seeds/$$c >$$log 2>&1; rc=$$?; \
	    n=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log); \
	    if [ $$rc -eq 0 ]; then \
	        echo "  FUZZ    $$t: $$n executions in $(FUZZ_SECONDS) s, no crash"; \
	    else \
	        status=1; tail -n 60 $$log; \
	        echo "  FUZZ    $$t: CRASH after $${n:-?} executions (log $$log, input in $(FUZZ_DIR)/artifacts)"; \
	    fi; \
	done; exit $$status

# -merge=1 into a directory that starts with the golden seeds keeps the smallest inputs that add
# coverage beyond them out of the repository corpus and the finds; the seeds (regenerated on
# every run) are then taken out again, and the rest replaces the repository corpus
fuzz-merge: $(FUZZ_BINS) fuzz-seeds
	$(Q)for t in $(FUZZ_TARGETS); do \
	    c=$${t#fuzz_}; new=$(FUZZ_DIR)/merged/$$c; \
	    rm -rf $$new && mkdir -p $$new $(FUZZ_REPO)/$$c $(FUZZ_DIR)/seeds/$$c; \
	    cp $(FUZZ_DIR)/seeds/$$c/. $$new/ -R; seeds=$$(ls $$new); \
	    dirs=$(FUZZ_REPO)/$$c; \
	    for x in $(FUZZ_DIR)/corpus/$$c $(FUZZ_DIR)/long/corpus/$$c; do \
	        [ -d $$x ] && dirs="$$dirs $$x"; \
	    done; \
	    if $(FUZZ_DIR)/$$t $(FUZZ_MERGE_FLAGS) $(FUZZ_FLAGS) $$new $$dirs >$(FUZZ_DIR)/$$t.merge.log 2>&1; then \
	        (cd $$new && rm -f $$seeds); \
	        rm -rf $(FUZZ_REPO)/$$c && mv $$new $(FUZZ_REPO)/$$c; \
	        echo "  MERGE   $$t: $$(ls $(FUZZ_REPO)/$$c | wc -l) inputs ($$(du -sh $(FUZZ_REPO)/$$c | cut -f1)) in $(FUZZ_REPO)/$$c"; \
	    else \
	        echo "  MERGE   $$t: failed (log $(FUZZ_DIR)/$$t.merge.log); $(FUZZ_REPO)/$$c kept"; \
	    fi; \
	done; du -sh $(FUZZ_REPO)

fuzz-long: $(FUZZ_BINS) fuzz-seeds
	$(Q)mkdir -p $(FUZZ_DIR)/long/corpus $(FUZZ_DIR)/artifacts
	$(Q)for t in $(FUZZ_TARGETS); do echo $$t; done | \
	    FUZZ_DIR=$(FUZZ_DIR) FUZZ_REPO=$(FUZZ_REPO) nohup xargs -P $(FUZZ_LONG_JOBS) -I{} sh -c \
	    't={}; c=$${t#fuzz_}; d=; case $$c in $(FUZZ_JSON)) d=-dict=tests/fuzz/json.dict ;; esac; \
	     mkdir -p $$FUZZ_DIR/long/corpus/$$c $$FUZZ_REPO/$$c $$FUZZ_DIR/seeds/$$c; \
	     $$FUZZ_DIR/$$t $$d -max_total_time=$(FUZZ_LONG_SECONDS) $(FUZZ_FLAGS) \
	         -artifact_prefix=$$FUZZ_DIR/artifacts/$$t- $$FUZZ_DIR/long/corpus/$$c \
	         $$FUZZ_REPO/$$c $$FUZZ_DIR/seeds/$$c >$$FUZZ_DIR/long/$$t.log 2>&1' \
	    >$(FUZZ_DIR)/long/nohup.log 2>&1 & \
	echo "  FUZZ    $(words $(FUZZ_TARGETS)) targets, $(FUZZ_LONG_SECONDS) s each, $(FUZZ_LONG_JOBS) at a time, in the background (pid $$!)"; \
	echo "          logs: $(FUZZ_DIR)/long/fuzz_*.log; when they end: make fuzz-merge, then commit $(FUZZ_REPO)"

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)

# ---- valgrind: unit tests, the golden runner's in-process half and e2e against a seglossd run
# under memcheck (no errors, no definite/indirect leaks). $(VG_DIR) is a stand-in build dir of
# wrapper scripts, so tests/run.sh runs and tallies them as usual. --fair-sched=yes: valgrind runs
# one thread at a time, and by default a busy compute worker can hold that turn for seconds, so
# seglossd's I/O threads answered nothing while a job ran (e2e's /readyz-while-saturated check
# never saw the queued request); fair scheduling hands the turn round.
VALGRIND ?= valgrind --tool=memcheck --fair-sched=yes --leak-check=full \
            --errors-for-leak-kinds=definite,indirect --error-exitcode=99 -q
VG_DIR   := $(BUILD)/valgrind
vg_wrap   = printf '\#!/bin/sh\nexec %s "$$@"\n' '$(2)' >$(1) && chmod +x $(1)

.PHONY: valgrind soak
valgrind: deps $(SEGLOSSD) $(SEGLOSS) $(UNIT_BIN) $(GOLDEN) $(E2E)
	$(Q)rm -rf $(VG_DIR) && mkdir -p $(VG_DIR)/tests
	$(Q)$(foreach t,$(UNIT_BIN),$(call vg_wrap,$(VG_DIR)/tests/$(notdir $(t)),$(VALGRIND) $(abspath $(t))) && ) true
	$(Q)$(call vg_wrap,$(VG_DIR)/tests/golden,$(VALGRIND) $(abspath $(GOLDEN)) --no-http)
	$(Q)$(call vg_wrap,$(VG_DIR)/tests/e2e,$(abspath $(E2E)))
	$(Q)$(call vg_wrap,$(VG_DIR)/seglossd,$(VALGRIND) $(abspath $(SEGLOSSD)))
	$(Q)ln -sf $(abspath $(SEGLOSS)) $(VG_DIR)/segloss
	$(Q)$(RUN_TESTS) $(VG_DIR) $(GOLDEN_DIR) unit golden e2e challenges

# ---- soak: tests/soak/soak.c against a fresh seglossd on loopback (a valid/invalid mix for
# SOAK_SECONDS, a --threads 1 --queue 2 flood, peak RSS under 64 concurrent 8x512x512 requests)
SOAK         := $(BUILD)/tests/soak
SOAK_SECONDS ?= 20
$(SOAK): $(BUILD)/obj/tests/soak/soak.o
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS) $^ -o $@ $(LDLIBS_ALL) -lcurl
soak: deps $(SEGLOSSD) $(SOAK)
	$(Q)$(SOAK) --seglossd $(SEGLOSSD) --seconds $(SOAK_SECONDS)

# ---- test-cluster: 3 seglossd replicas behind Debian's nginx running docker/nginx/segloss.conf
# on loopback ports (tests/cluster/test_cluster.py: golden load through nginx, SIGKILL and
# SIGTERM of a replica), and the deployment files checked against seglossd's flags
# (tests/cluster/check_deploy.py); challenges on 3 replicas sharing one PostgreSQL (started by
# the test) and one --blob-dir (tests/cluster/test_cluster_pg.py: quotas, a replica killed while
# scoring and one while re-scoring, one leaderboard). Installs its Debian packages as root.
CLUSTER_PKGS = nginx python3-yaml yamllint postgresql python3-numpy
.PHONY: test-cluster
test-cluster: deps $(SEGLOSSD) $(SEGLOSS)
	$(Q)SEGLOSS_PKGS="$(CLUSTER_PKGS)" sh .ci/deps.sh
	$(Q)sh tests/cluster/run.sh $(SEGLOSSD) $(GOLDEN_DIR)

# ---- test-image: docker/Dockerfile and docker/compose.yaml for real (tests/image/test_image.py):
# starts dockerd if none answers (and stops it after), makes debian:12 / debian:12-slim with
# debootstrap when missing, builds both images, runs the golden runner and e2e's functional
# checks against a read-only container, drains it with docker stop, brings up the compose stack
# (3 replicas on the postgres service behind nginx; the challenge checks through nginx), kills a
# replica under golden load, docker-compose down -v. Installs its Debian packages as root.
IMAGE_PKGS = docker.io docker-compose debootstrap debian-archive-keyring python3-yaml python3-numpy
.PHONY: test-image
test-image: deps $(SEGLOSSD) $(SEGLOSS) $(GOLDEN) $(E2E)
	$(Q)SEGLOSS_PKGS="$(IMAGE_PKGS)" sh .ci/deps.sh
	$(Q)$(if $(wildcard /usr/bin/python3),/usr/bin/python3,python3) tests/image/test_image.py \
	    --build $(BUILD) --golden $(GOLDEN_DIR)
