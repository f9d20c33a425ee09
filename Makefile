# ktlsshim: make (build), make test (every suite), make demo (the main job), make clean.
BUILD := build
CC := gcc
.DEFAULT_GOAL := all
SHELL := /bin/bash

# Dependencies and the Mbed TLS 3.6 location come from tools/install-deps (generated config).
-include $(BUILD)/config.mk
$(BUILD)/config.mk: tools/install-deps tools/fetch-debian-pkgs
	@tools/install-deps

# For the programs that use Mbed TLS (apps, tests, tools). --no-as-needed: those that contain the
# shim's code (unit tests, ktls-probe) call Mbed TLS only through dlsym, yet need it loaded.
MBEDTLS_LIBS := -L$(MBEDTLS_LIBDIR) -Wl,--disable-new-dtags,-rpath,$(MBEDTLS_LIBDIR) -Wl,--no-as-needed \
	-lmbedtls -lmbedx509 -lmbedcrypto
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -I$(MBEDTLS_INC) -Iinclude -Ishim
CFLAGS := $(CFLAGS_COMMON) -O2
# Sanitizer builds: asan (ASan+UBSan) runs on the host; ubsan runs inside tools/ktls-vm, whose
# User-Mode Linux address space is too small for ASan's shadow memory.
SAN_COMMON := -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all
asan_FLAGS := $(SAN_COMMON) -fsanitize=address,undefined
ubsan_FLAGS := $(SAN_COMMON) -fsanitize=undefined
tsan_FLAGS := $(SAN_COMMON) -fsanitize=thread

SHIM_SRC := $(wildcard shim/*.c)
SHIM_HDR := $(wildcard shim/*.h include/*.h)
APP_SRC := $(wildcard tests/apps/*.c)
APP_HDR := $(wildcard tests/apps/*.h)
APP_LIB_SRC := $(filter-out tests/apps/mbed-%.c,$(APP_SRC))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
# The pure parts the unit tests link directly (no interposition, no kernel).
UNIT_LIB_SRC := $(filter-out shim/interpose.c,$(SHIM_SRC))

LIB := $(BUILD)/libktlsshim.so
APPS := $(BUILD)/apps/mbed-server $(BUILD)/apps/mbed-client
UNITS := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))
TOOLS := $(BUILD)/tools/ktls-probe
FAULT_LIB := $(BUILD)/tests/librefuse-sockopt.so
API_TESTS := $(BUILD)/tests/export-server $(BUILD)/tests/raw-handshake $(BUILD)/tests/secret-scan \
	$(BUILD)/tests/setuid-stand-in
SAN_TARGETS := $(foreach v,asan ubsan tsan,$(BUILD)/$(v)/libktlsshim.so $(BUILD)/$(v)/apps/mbed-server \
	$(BUILD)/$(v)/apps/mbed-client $(patsubst tests/unit/%.c,$(BUILD)/$(v)/unit/%,$(UNIT_SRC)))

.PHONY: all san test demo clean deps
all: $(BUILD)/config.mk $(LIB) $(APPS) $(UNITS) $(TOOLS) $(FAULT_LIB) $(API_TESTS)
	@echo "ktlsshim: built against Mbed TLS $(MBEDTLS_VERSION) ($(MBEDTLS_LIBDIR))"
san: $(SAN_TARGETS)
deps: $(BUILD)/config.mk

# The library links no Mbed TLS (-z defs: nothing left to resolve at run time but libc's); it finds
# the program's own at run time (shim/real.c).
$(LIB): $(SHIM_SRC) $(SHIM_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -shared -Wl,-z,defs -o $@ $(SHIM_SRC) -ldl -lpthread

$(BUILD)/apps/%: tests/apps/%.c $(APP_LIB_SRC) $(APP_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(APP_LIB_SRC) $(MBEDTLS_LIBS) -lpthread

$(BUILD)/unit/%: tests/unit/%.c $(UNIT_LIB_SRC) $(SHIM_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(UNIT_LIB_SRC) $(MBEDTLS_LIBS) -ldl -lpthread

# The same library, apps and unit tests for each sanitizer variant V (asan, ubsan).
define SAN_RULES
$(BUILD)/$(1)/libktlsshim.so: $(SHIM_SRC) $(SHIM_HDR) $(BUILD)/config.mk
	@mkdir -p $$(@D)
	$(CC) $(CFLAGS_COMMON) $($(1)_FLAGS) -fPIC -fvisibility=hidden -shared -o $$@ $(SHIM_SRC) -ldl -lpthread
$(BUILD)/$(1)/apps/%: tests/apps/%.c $(APP_LIB_SRC) $(APP_HDR) $(BUILD)/config.mk
	@mkdir -p $$(@D)
	$(CC) $(CFLAGS_COMMON) $($(1)_FLAGS) -o $$@ $$< $(APP_LIB_SRC) $(MBEDTLS_LIBS) -lpthread
$(BUILD)/$(1)/unit/%: tests/unit/%.c $(UNIT_LIB_SRC) $(SHIM_HDR) $(BUILD)/config.mk
	@mkdir -p $$(@D)
	$(CC) $(CFLAGS_COMMON) $($(1)_FLAGS) -o $$@ $$< $(UNIT_LIB_SRC) $(MBEDTLS_LIBS) -ldl -lpthread
endef
$(foreach v,asan ubsan tsan,$(eval $(call SAN_RULES,$(v))))

$(BUILD)/tools/%: tools/%.c $(UNIT_LIB_SRC) $(SHIM_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(UNIT_LIB_SRC) $(MBEDTLS_LIBS) -ldl -lpthread

test: all san uml-latest uml-5.10
	@tools/run-tests

# The other test kernels, fetched once into build/ (tools/fetch-uml): the newest for
# tools/ktls-vm --kernel latest (TLS 1.3 rekey), and 5.10 (no ChaCha in kTLS, a broken TLS 1.3 CCM).
.PHONY: uml-latest uml-5.10
uml-latest uml-5.10:
	@tools/fetch-uml $(@:uml-%=%)

demo: all
	@tools/demo

clean:
	rm -rf $(BUILD)

# Programs that link the library and use include/ktlsshim.h (it comes before Mbed TLS).
$(BUILD)/tests/%: tests/api/%.c $(LIB) include/ktlsshim.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -lktlsshim $(MBEDTLS_LIBS) -lpthread

# A libssl peer that sends TLS 1.3 KeyUpdates on a schedule (tests/keyupdate.bats).
OPENSSL_PEER := $(BUILD)/tests/openssl-peer
all: $(OPENSSL_PEER)
$(OPENSSL_PEER): tests/peers/openssl-peer.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< -lssl -lcrypto

# Test-only fault injection (never installed).
$(FAULT_LIB): tests/fault/refuse-sockopt.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $< -ldl

# ---- make install [PREFIX=/usr/local] [DESTDIR=] ---------------------------------------------------
# The library, the public header, ktls-run and ktls-probe, and a pkg-config file (from
# ktlsshim.pc.in) that names the Mbed TLS this build used (build/config.mk) by path.
# `make uninstall` with the same PREFIX/DESTDIR removes exactly these files.
PREFIX ?= /usr/local
KTLSSHIM_VERSION := 0.1.0
INSTALL_FILES := lib/libktlsshim.so include/ktlsshim.h bin/ktls-run bin/ktls-probe \
	lib/pkgconfig/ktlsshim.pc

.PHONY: install uninstall
install: $(LIB) $(TOOLS) include/ktlsshim.h tools/ktls-run ktlsshim.pc.in
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libktlsshim.so
	install -m 0644 include/ktlsshim.h $(DESTDIR)$(PREFIX)/include/ktlsshim.h
	install -m 0755 tools/ktls-run $(DESTDIR)$(PREFIX)/bin/ktls-run
	install -m 0755 $(BUILD)/tools/ktls-probe $(DESTDIR)$(PREFIX)/bin/ktls-probe
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(KTLSSHIM_VERSION)|g' \
		-e 's|@MBEDTLS_INC@|$(MBEDTLS_INC)|g' -e 's|@MBEDTLS_LIBDIR@|$(MBEDTLS_LIBDIR)|g' \
		ktlsshim.pc.in >$(DESTDIR)$(PREFIX)/lib/pkgconfig/ktlsshim.pc
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/ktlsshim.pc

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALL_FILES))

# ---- hostile peers and fuzzing (tests/hostile.bats, tests/fuzz) -----------------------------------
# build/tests/relay: the man-in-the-middle relay tests/hostile.bats puts between the stand-in apps.
# make fuzz: each libFuzzer target (clang -fsanitize=fuzzer,address,undefined) for FUZZ_SECONDS (60).
# make fuzz-smoke: each target for FUZZ_SMOKE_SECONDS (10), from the committed seeds; prints the
# executions per target (for make test).
HOSTILE_RELAY := $(BUILD)/tests/relay
FUZZ_CC := clang
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -I$(MBEDTLS_INC) -Iinclude -Ishim \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

# tests/hostile.bats runs in the host suite of make test: the relay is built with everything else.
all: $(HOSTILE_RELAY)

$(HOSTILE_RELAY): tests/hostile/relay.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $<

$(BUILD)/fuzz/%: tests/fuzz/%.c $(UNIT_LIB_SRC) $(SHIM_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(UNIT_LIB_SRC) $(MBEDTLS_LIBS) -ldl -lpthread

# run_fuzz SECONDS: each target from a scratch copy of its seeds (new inputs stay out of tests/).
define RUN_FUZZ
	@set -e; for t in $(FUZZ_TARGETS); do \
		n=$$(basename $$t); corpus=$(BUILD)/fuzz/corpus/$$n; mkdir -p $$corpus; \
		[ ! -d tests/fuzz/seeds/$$n ] || cp -n tests/fuzz/seeds/$$n/* $$corpus/ 2>/dev/null || true; \
		$$t -max_total_time=$(1) -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/$$n- \
			$$corpus >$(BUILD)/fuzz/$$n.log 2>&1 || { tail -n 40 $(BUILD)/fuzz/$$n.log; \
			echo "fuzz: $$n FAILED (log $(BUILD)/fuzz/$$n.log)"; exit 1; }; \
		echo "fuzz: $$n $$(sed -n 's/^stat::number_of_executed_units: *//p' $(BUILD)/fuzz/$$n.log) executions in $(1) s"; \
	done
endef

.PHONY: fuzz fuzz-smoke hostile
hostile: $(HOSTILE_RELAY)
fuzz: $(FUZZ_TARGETS)
	$(call RUN_FUZZ,$(FUZZ_SECONDS))
fuzz-smoke: $(FUZZ_TARGETS)
	$(call RUN_FUZZ,$(FUZZ_SMOKE_SECONDS))

# ---- lifecycle and load (tests/lifecycle.bats, tests/load.bats, tests/load/run-load) ---------------
# build/tests/lifecycle: an Mbed TLS program that abuses context lifecycles (both ends in-process).
# build/tests/load-client: many threads of mixed-suite connections to mbed-server --threads --echo.
# Both are ordinary Mbed TLS programs (the shim is LD_PRELOADed by the tests), also built for each
# sanitizer variant under build/<asan|ubsan|tsan>/tests/.
# make load: the full 64 x 1000 load on the host and in tools/ktls-vm, under TSan, ASan and valgrind,
# then the figures.
LIFECYCLE_LOAD := $(BUILD)/tests/lifecycle $(BUILD)/tests/load-client
LIFECYCLE_LOAD_SAN := $(foreach v,asan ubsan tsan,$(BUILD)/$(v)/tests/lifecycle $(BUILD)/$(v)/tests/load-client)
all: $(LIFECYCLE_LOAD)
san: $(LIFECYCLE_LOAD_SAN)

$(BUILD)/tests/lifecycle: tests/lifecycle/lifecycle.c $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(MBEDTLS_LIBS) -lpthread
$(BUILD)/tests/load-client: tests/load/load-client.c $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(MBEDTLS_LIBS) -lpthread
# build/tests/fork-echo: parent and child take turns on one TLS 1.3 connection (tests/keyupdate.bats).
all: $(BUILD)/tests/fork-echo
$(BUILD)/tests/fork-echo: tests/lifecycle/fork-echo.c $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(MBEDTLS_LIBS)

define LIFECYCLE_LOAD_RULES
$(BUILD)/$(1)/tests/lifecycle: tests/lifecycle/lifecycle.c $(BUILD)/config.mk
	@mkdir -p $$(@D)
	$(CC) $(CFLAGS_COMMON) $($(1)_FLAGS) -o $$@ $$< $(MBEDTLS_LIBS) -lpthread
$(BUILD)/$(1)/tests/load-client: tests/load/load-client.c $(BUILD)/config.mk
	@mkdir -p $$(@D)
	$(CC) $(CFLAGS_COMMON) $($(1)_FLAGS) -o $$@ $$< $(MBEDTLS_LIBS) -lpthread
endef
$(foreach v,asan ubsan tsan,$(eval $(call LIFECYCLE_LOAD_RULES,$(v))))

.PHONY: load
load: all san
	@tests/load/run-load

# ---- make bench [BENCH_SMOKE=1] (tools/bench, docs/benchmarks.md) ---------------------------------
# make bench: the full benchmark (host fallback + one tools/ktls-vm boot, under 10 min on 2 cores);
# writes build/bench/results.{json,md} and regenerates docs/benchmarks.md and docs/benchmarks.png.
# make bench BENCH_SMOKE=1: seconds-long sizes, results in build/bench/smoke/, docs untouched.
# The helpers (tools/bench-*.c): the probe preloaded into the stand-in apps, a raw kTLS pair and an
# OpenSSL kTLS peer.
BENCH_BINS := $(BUILD)/bench/libbenchprobe.so $(BUILD)/bench/ktls-pair $(BUILD)/bench/ossl-bulk
BENCH_HDR := tools/bench-probe.h tools/bench-net.h
all: $(BENCH_BINS)

$(BUILD)/bench/libbenchprobe.so: tools/bench-probe-preload.c tools/bench-probe.c $(BENCH_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ tools/bench-probe-preload.c tools/bench-probe.c -ldl -lpthread
$(BUILD)/bench/ktls-pair: tools/bench-ktls-pair.c tools/bench-net.c tools/bench-probe.c $(BENCH_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tools/bench-ktls-pair.c tools/bench-net.c tools/bench-probe.c -lpthread
$(BUILD)/bench/ossl-bulk: tools/bench-ossl-bulk.c tools/bench-net.c tools/bench-probe.c $(BENCH_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tools/bench-ossl-bulk.c tools/bench-net.c tools/bench-probe.c -lssl -lcrypto -lpthread

.PHONY: bench
bench: all
	@tools/bench $(if $(filter 1,$(BENCH_SMOKE)),--smoke,--write-doc)
