# SPDX-License-Identifier: Apache-2.0
# ktlsshim. make: build; make check: the fast loop; make test: every suite; make demo;
# make lint; make deps; make install; make compile_commands.json; make clean. See HACKING.md.
BUILD := build
CC := gcc
FUZZ_CC := clang
.DEFAULT_GOAL := all
SHELL := /bin/bash

# ---- packages and Mbed TLS --------------------------------------------------------------------
# tools/install-deps installs the missing packages and writes $(CONFIG) (which Mbed TLS 3.6). The
# config is an ordinary prerequisite of every object, never an included makefile, so `make -n`
# installs nothing; its values are read when a recipe runs, by then it exists.
CONFIG := $(BUILD)/config.mk
config = $(shell sed -n 's/^$(1) := //p' $(CONFIG) 2>/dev/null)
MBEDTLS_VERSION = $(call config,MBEDTLS_VERSION)
MBEDTLS_INC = $(call config,MBEDTLS_INC)
MBEDTLS_LIBDIR = $(call config,MBEDTLS_LIBDIR)
# Mbed TLS 2.28 (Debian 12's, unpacked privately): the 2.28 adapter is compiled against it alone.
MBEDTLS228_INC = $(call config,MBEDTLS228_INC)
MBEDTLS228_LIBDIR = $(call config,MBEDTLS228_LIBDIR)
MBEDTLS228_SRC := shim/mbed228.c
# mbedtls_inc WORDS: the Mbed TLS include directory for the source or target among WORDS (the
# 2.28 adapter and everything under build/228/).
mbedtls_inc = $(if $(filter $(MBEDTLS228_SRC) $(BUILD)/228/%,$(1)),$(MBEDTLS228_INC),$(MBEDTLS_INC))
MBEDTLS228_LIBS = -L$(MBEDTLS228_LIBDIR) -Wl,--disable-new-dtags,-rpath,$(MBEDTLS228_LIBDIR) \
	-lmbedtls -lmbedx509 -lmbedcrypto
# For the programs that use Mbed TLS (apps, tests, tools). --no-as-needed: those that contain the
# shim's code (unit tests, ktls-probe) call Mbed TLS only through dlsym, yet need it loaded.
MBEDTLS_LIBS = -L$(MBEDTLS_LIBDIR) -Wl,--disable-new-dtags,-rpath,$(MBEDTLS_LIBDIR) -Wl,--no-as-needed \
	-lmbedtls -lmbedx509 -lmbedcrypto

$(CONFIG): tools/install-deps tools/fetch-debian-pkgs
	BUILD_DIR=$(BUILD) tools/install-deps
	@touch $@

# Test certificates (tests/apps/gen-certs), for make demo and the suites.
CERTS := $(BUILD)/certs/complete
$(CERTS):
	tests/apps/gen-certs

# ---- flags ------------------------------------------------------------------------------------
# The required flags always come first; CFLAGS, CPPFLAGS and LDFLAGS are the user's and add to them.
CFLAGS ?= -g -O2
# Each object gets one Mbed TLS's headers: 2.28's for the 2.28 adapter and build/228/, 3.6's for
# the rest ($< and $@ in a compile rule, f in compile_commands.json).
REQ_CFLAGS = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I$(call mbedtls_inc,$< $(f) $@) -Iinclude -Ishim
# The link line of the library, in one place.
# The library links no Mbed TLS: it finds the program's own at run time (shim/real.c). The plain
# build links with -z defs (nothing left to resolve but libc's); sanitizer runtimes resolve late.
SHIM_LDLIBS = -ldl -lpthread
UNIT_LDLIBS = $(MBEDTLS_LIBS) -ldl -lpthread
APP_LDLIBS = $(MBEDTLS_LIBS) -lpthread

# Variants: plain (build/), asan = ASan+UBSan (host), ubsan (inside tools/ktls-vm, whose User-Mode
# Linux address space is too small for ASan's shadow memory), tsan (host), and the libFuzzer build.
SAN_COMMON := -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all
asan_FLAGS := $(SAN_COMMON) -fsanitize=address,undefined
ubsan_FLAGS := $(SAN_COMMON) -fsanitize=undefined
tsan_FLAGS := $(SAN_COMMON) -fsanitize=thread
fuzz_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined
SAN_VARIANTS := asan ubsan tsan

# compile CC, VARIANT-FLAGS: the command that compiles one source (the rules and
# compile_commands.json); the library's sources also get -fvisibility=hidden, and -fexceptions: an
# exception thrown through an app's BIO callback then runs the shim's pthread cleanup handler
# (the BIO watch is popped: shim/capture.c).
compile = $(1) $(REQ_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(2) -fPIC
SHIM_ONLY := -fvisibility=hidden -fexceptions
hidden = $(if $(filter shim/%,$(1)),$(SHIM_ONLY))

# ---- sources ----------------------------------------------------------------------------------
SHIM_SRC := $(wildcard shim/*.c)
APP_SRC := $(wildcard tests/apps/*.c)
APP_LIB_SRC := $(filter-out tests/apps/mbed-%.c,$(APP_SRC))
# The apps' own BIO callbacks (--bio), which the lifecycle program uses too (LIFECYCLE_BIO).
BIO_SRC := tests/apps/bio.c tests/apps/bio-async.c
UNIT_SRC := $(wildcard tests/unit/test_*.c)
# The pure parts the unit tests, tools and fuzz targets link directly (no interposition of
# Mbed TLS's or libc's data calls: test_io fakes some of those).
UNIT_LIB_SRC := $(filter-out shim/interpose.c shim/biowatch.c shim/biowait.c shim/biojump.c,$(SHIM_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
# objs DIR, SOURCES: their objects in variant directory DIR.
objs = $(patsubst %.c,$(1)/obj/%.o,$(2))

# ---- one template for every variant ------------------------------------------------------------
# COMPILE DIR, CC, FLAGS: objects under DIR/obj/ with dependency tracking.
define COMPILE
$(1)/obj/shim/%.o: shim/%.c $(CONFIG)
	@mkdir -p $$(@D)
	$$(call compile,$(2),$(3)) $(SHIM_ONLY) -MMD -MP -c -o $$@ $$<
$(1)/obj/%.o: %.c $(CONFIG)
	@mkdir -p $$(@D)
	$$(call compile,$(2),$(3)) -MMD -MP -c -o $$@ $$<
endef

# VARIANT DIR, FLAGS: the library, the stand-in apps, the unit tests and the lifecycle and load
# programs, built with FLAGS under DIR.
define VARIANT
$(call COMPILE,$(1),$$(CC),$(2))
$(1)/libktlsshim.so: $(call objs,$(1),$(SHIM_SRC))
	$$(CC) $(2) $$(LDFLAGS) -shared $(if $(2),,-Wl,-z,defs) -o $$@ $$^ $$(SHIM_LDLIBS)
$(1)/apps/%: $(1)/obj/tests/apps/%.o $(call objs,$(1),$(APP_LIB_SRC))
	@mkdir -p $$(@D)
	$$(CC) $(2) $$(LDFLAGS) -o $$@ $$^ $$(APP_LDLIBS)
$(1)/unit/%: $(1)/obj/tests/unit/%.o $(call objs,$(1),$(UNIT_LIB_SRC))
	@mkdir -p $$(@D)
	$$(CC) $(2) $$(LDFLAGS) -o $$@ $$^ $$(UNIT_LDLIBS)
$(1)/tests/lifecycle: $(1)/obj/tests/lifecycle/lifecycle.o $(call objs,$(1),$(BIO_SRC))
	@mkdir -p $$(@D)
	$$(CC) $(2) $$(LDFLAGS) -o $$@ $$^ $$(APP_LDLIBS)
$(1)/tests/load-client: $(1)/obj/tests/load/load-client.o
	@mkdir -p $$(@D)
	$$(CC) $(2) $$(LDFLAGS) -o $$@ $$^ $$(APP_LDLIBS)
endef
# variant_outputs DIR: what VARIANT builds there.
variant_outputs = $(1)/libktlsshim.so $(1)/apps/mbed-server $(1)/apps/mbed-client \
	$(patsubst tests/unit/%.c,$(1)/unit/%,$(UNIT_SRC)) $(1)/tests/lifecycle $(1)/tests/load-client

$(eval $(call VARIANT,$(BUILD),))
# The stand-in apps once more, against Mbed TLS 2.28 (TLS 1.2 only): build/apps228/.
APPS228 := $(BUILD)/apps228/mbed-server $(BUILD)/apps228/mbed-client
$(eval $(call COMPILE,$(BUILD)/228,$$(CC),))
$(BUILD)/apps228/%: $(BUILD)/228/obj/tests/apps/%.o $(call objs,$(BUILD)/228,$(APP_LIB_SRC))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(MBEDTLS228_LIBS) -lpthread
# And the lifecycle program (tests/lifecycle.bats with LIFECYCLE=build/tests228/lifecycle).
LIFECYCLE228 := $(BUILD)/tests228/lifecycle
$(LIFECYCLE228): $(BUILD)/228/obj/tests/lifecycle/lifecycle.o $(call objs,$(BUILD)/228,$(BIO_SRC))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(MBEDTLS228_LIBS) -lpthread
$(foreach v,$(SAN_VARIANTS),$(eval $(call VARIANT,$(BUILD)/$(v),$$($(v)_FLAGS))))
$(eval $(call COMPILE,$(BUILD)/fuzz,$$(FUZZ_CC),$$(fuzz_FLAGS)))
# Objects made by chained rules are kept (no rebuild next time); their .d files list the headers.
.SECONDARY:
-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/obj/*/*/*.d $(BUILD)/*/obj/*/*.d $(BUILD)/*/obj/*/*/*.d)

# ---- plain-only programs -----------------------------------------------------------------------
LIB := $(BUILD)/libktlsshim.so
TOOLS := $(BUILD)/tools/ktls-probe
API_TESTS := $(BUILD)/tests/export-server $(BUILD)/tests/raw-handshake $(BUILD)/tests/secret-scan \
	$(BUILD)/tests/setuid-stand-in
FORK_ECHO := $(BUILD)/tests/fork-echo
BIO_ESCAPE := $(BUILD)/tests/bio-escape
FAULT_LIB := $(BUILD)/tests/librefuse-sockopt.so
OPENSSL_PEER := $(BUILD)/tests/openssl-peer
HOSTILE_RELAY := $(BUILD)/tests/relay
BENCH_BINS := $(BUILD)/bench/libbenchprobe.so $(BUILD)/bench/ktls-pair $(BUILD)/bench/ossl-bulk \
	$(BUILD)/bench/http-load $(BUILD)/bench/idle
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
PLAIN := $(call variant_outputs,$(BUILD)) $(APPS228) $(LIFECYCLE228) $(TOOLS) $(API_TESTS) $(FORK_ECHO) $(BIO_ESCAPE) $(FAULT_LIB) $(OPENSSL_PEER) \
	$(HOSTILE_RELAY) $(BENCH_BINS)
SAN := $(foreach v,$(SAN_VARIANTS),$(call variant_outputs,$(BUILD)/$(v)))

# ktls-probe links the pure parts of the shim.
$(BUILD)/tools/%: $(BUILD)/obj/tools/%.o $(call objs,$(BUILD),$(UNIT_LIB_SRC))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(UNIT_LDLIBS)
# Programs that link the library and use include/ktlsshim.h (it comes before Mbed TLS).
$(BUILD)/tests/%: $(BUILD)/obj/tests/api/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -lktlsshim $(APP_LDLIBS)
# Parent and child take turns on one TLS 1.3 connection (tests/keyupdate.bats).
$(FORK_ECHO): $(BUILD)/obj/tests/lifecycle/fork-echo.o
	$(CC) $(LDFLAGS) -o $@ $^ $(APP_LDLIBS)
# A custom BIO call left by siglongjmp, the app going on (tests/custombio.bats).
$(BIO_ESCAPE): $(BUILD)/obj/tests/lifecycle/bio-escape.o
	$(CC) $(LDFLAGS) -o $@ $^ $(APP_LDLIBS)
# Test-only fault injection (never installed).
$(FAULT_LIB): $(BUILD)/obj/tests/fault/refuse-sockopt.o
	$(CC) $(LDFLAGS) -shared -o $@ $^ -ldl
# A libssl peer that sends TLS 1.3 KeyUpdates on a schedule (tests/keyupdate.bats).
$(OPENSSL_PEER): $(BUILD)/obj/tests/peers/openssl-peer.o
	$(CC) $(LDFLAGS) -o $@ $^ -lssl -lcrypto
# The man-in-the-middle relay tests/hostile.bats puts between the stand-in apps.
$(HOSTILE_RELAY): $(BUILD)/obj/tests/hostile/relay.o
	$(CC) $(LDFLAGS) -o $@ $^
# make bench's helpers: the probe preloaded into the apps, a raw kTLS pair, an OpenSSL kTLS peer.
$(BUILD)/bench/libbenchprobe.so: $(call objs,$(BUILD),tools/bench-probe-preload.c tools/bench-probe.c)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -shared -o $@ $^ -ldl -lpthread
$(BUILD)/bench/ktls-pair: $(call objs,$(BUILD),tools/bench-ktls-pair.c tools/bench-net.c tools/bench-probe.c)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread
$(BUILD)/bench/ossl-bulk: $(call objs,$(BUILD),tools/bench-ossl-bulk.c tools/bench-net.c tools/bench-probe.c)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lssl -lcrypto -lpthread
# The HTTPS load client of tools/bench-daemon (lighttpd with the shim against mod_openssl).
$(BUILD)/bench/http-load: $(call objs,$(BUILD),tools/bench-http-load.c)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lssl -lcrypto -lpthread
# Memory per idle connection: the stand-in apps' Mbed TLS setup, many connections held open.
$(BUILD)/bench/idle: $(call objs,$(BUILD),tools/bench-idle.c $(APP_LIB_SRC))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(APP_LDLIBS)
# libFuzzer targets (clang): tests/fuzz/fuzz_X.c and the pure parts of the shim.
$(BUILD)/fuzz/%: $(BUILD)/fuzz/obj/tests/fuzz/%.o $(call objs,$(BUILD)/fuzz,$(UNIT_LIB_SRC))
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined $(LDFLAGS) -o $@ $^ $(UNIT_LDLIBS)

# ---- the usual targets -------------------------------------------------------------------------
.PHONY: all san deps test check demo clean uml-latest uml-5.10 compile_commands.json
all: $(PLAIN)
	@echo "ktlsshim: built against Mbed TLS $(MBEDTLS_VERSION) ($(MBEDTLS_LIBDIR))"
san: $(SAN)
# Install or update the packages (tools/install-deps); the build runs it once by itself.
deps:
	BUILD_DIR=$(BUILD) tools/install-deps

# The other test kernels, fetched once into build/ (tools/fetch-uml): the newest for
# tools/ktls-vm --kernel latest (TLS 1.3 rekey), and 5.10 (no ChaCha in kTLS, a broken TLS 1.3 CCM).
uml-latest uml-5.10:
	@tools/fetch-uml $(@:uml-%=%)

demo: all $(CERTS)
	@tools/demo
test: all san $(FUZZ_TARGETS) $(CERTS) uml-latest uml-5.10
	@tools/run-tests
# The fast loop: unit tests, fuzz smoke, the host suites and one kTLS boot of the core cases.
check: all $(FUZZ_TARGETS) $(CERTS) uml-latest
	@tools/run-tests --check

clean:
	rm -rf $(BUILD) compile_commands.json

# For editors and clang tools: how each source of the plain and fuzz builds is compiled.
COMPILED_SRC := $(SHIM_SRC) $(APP_SRC) $(UNIT_SRC) $(wildcard tools/*.c tests/*/*.c)
compile_commands.json: $(CONFIG)
	@{ echo '['; sep=' '; \
	$(foreach f,$(filter-out $(FUZZ_SRC),$(sort $(COMPILED_SRC))),\
		printf '%s{ "directory": "%s", "file": "%s", "command": "%s" }\n' "$$sep" "$(CURDIR)" "$(f)" \
			"$(call compile,$(CC),$(call hidden,$(f))) -c $(f)"; sep=,;) \
	$(foreach f,$(FUZZ_SRC),\
		printf ',{ "directory": "%s", "file": "%s", "command": "%s" }\n' "$(CURDIR)" "$(f)" \
			"$(call compile,$(FUZZ_CC),$(fuzz_FLAGS)) -c $(f)";) \
	echo ']'; } >$@
	@echo "compile_commands.json: $$(grep -c '"file"' $@) sources"

# ---- make lint ---------------------------------------------------------------------------------
# shellcheck on the scripts, cppcheck and gcc -fanalyzer on shim/, the library's exports
# (tools/check-exports): exactly the wrapped mbedtls_ssl_* functions and the ktlsshim_* API, and
# shim/'s shape (tools/check-layout): no include cycle, no file over 400 lines, no function over 60.
SCRIPTS = $(shell grep -lE '^#!.*(bash|/sh)' tools/*) $(wildcard tests/*.bash)
ANALYZER_OBJS := $(call objs,$(BUILD)/analyzer,$(SHIM_SRC))
$(eval $(call COMPILE,$(BUILD)/analyzer,$$(CC),-fanalyzer))
.PHONY: lint
lint: $(LIB) $(ANALYZER_OBJS)
	shellcheck -x $(SCRIPTS)
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' 2>/dev/null || find shim include tests tools -name '*.[ch]')
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
		--inline-suppr -D_GNU_SOURCE -Iinclude -Ishim shim/
	tools/check-exports $(LIB)
	tools/check-layout shim
	@echo "lint: clean"

# ---- make install [PREFIX=/usr/local] [DESTDIR=] ------------------------------------------------
# The library, the public header, ktls-run and ktls-probe, the man pages, and a pkg-config file
# (from ktlsshim.pc.in) that names the Mbed TLS this build used by path. `make uninstall` with the
# same PREFIX/DESTDIR removes exactly these files.
PREFIX ?= /usr/local
KTLSSHIM_VERSION := 0.1.0
MAN_PAGES := man/ktls-run.1 man/ktlsshim.3 man/ktlsshim.7
INSTALL_FILES := lib/libktlsshim.so include/ktlsshim.h bin/ktls-run bin/ktls-probe \
	lib/pkgconfig/ktlsshim.pc $(foreach m,$(MAN_PAGES),share/man/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))

.PHONY: install uninstall
install: $(LIB) $(TOOLS) include/ktlsshim.h tools/ktls-run ktlsshim.pc.in $(MAN_PAGES)
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
		$(addprefix $(DESTDIR)$(PREFIX)/share/man/man,1 3 7)
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libktlsshim.so
	install -m 0644 include/ktlsshim.h $(DESTDIR)$(PREFIX)/include/ktlsshim.h
	install -m 0755 tools/ktls-run $(DESTDIR)$(PREFIX)/bin/ktls-run
	install -m 0755 $(BUILD)/tools/ktls-probe $(DESTDIR)$(PREFIX)/bin/ktls-probe
	$(foreach m,$(MAN_PAGES),install -m 0644 $(m) $(DESTDIR)$(PREFIX)/share/man/man$(subst .,,$(suffix $(m)))/;)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(KTLSSHIM_VERSION)|g' \
		-e 's|@MBEDTLS_INC@|$(MBEDTLS_INC)|g' -e 's|@MBEDTLS_LIBDIR@|$(MBEDTLS_LIBDIR)|g' \
		ktlsshim.pc.in >$(DESTDIR)$(PREFIX)/lib/pkgconfig/ktlsshim.pc
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/ktlsshim.pc

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALL_FILES))

# ---- fuzzing, load, benchmarks -----------------------------------------------------------------
# make fuzz: each libFuzzer target for FUZZ_SECONDS (60). make fuzz-smoke: each for
# FUZZ_SMOKE_SECONDS (10), from the committed seeds; prints the executions per target.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
# RUN_FUZZ SECONDS: each target from a scratch copy of its seeds (new inputs stay out of tests/).
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

.PHONY: fuzz fuzz-smoke hostile load bench
hostile: $(HOSTILE_RELAY)
fuzz: $(FUZZ_TARGETS)
	$(call RUN_FUZZ,$(FUZZ_SECONDS))
fuzz-smoke: $(FUZZ_TARGETS)
	$(call RUN_FUZZ,$(FUZZ_SMOKE_SECONDS))

# make load: the full 64 x 1000 load on the host and in tools/ktls-vm, under TSan, ASan and
# valgrind, then the figures (tests/load/run-load).
load: all san $(CERTS)
	@tests/load/run-load

# make bench: the full benchmark (host fallback + one tools/ktls-vm boot, under 10 min on 2 cores);
# writes build/bench/results.{json,md} and regenerates docs/benchmarks.md and docs/benchmarks.png.
# make bench BENCH_SMOKE=1: seconds-long sizes, results in build/bench/smoke/, docs untouched.
# Then tools/bench-daemon: lighttpd with the shim against mod_openssl + kTLS, one more boot (the
# latest kernel); it writes build/bench/daemon.{json,md} and its part of docs/benchmarks.md.
bench: all $(CERTS)
	@tools/bench $(if $(filter 1,$(BENCH_SMOKE)),--smoke,--write-doc)
	@tests/realapps/setup
	@tools/bench-daemon $(if $(filter 1,$(BENCH_SMOKE)),--smoke,--write-doc)
