# ktlsshim: make (build), make test (every suite), make demo (the main job), make clean.
BUILD := build
CC := gcc
SHELL := /bin/bash

# Dependencies and the Mbed TLS 3.6 location come from tools/install-deps (generated config).
-include $(BUILD)/config.mk
$(BUILD)/config.mk: tools/install-deps tools/fetch-debian-pkgs
	@tools/install-deps

MBEDTLS_LIBS := -L$(MBEDTLS_LIBDIR) -Wl,--disable-new-dtags,-rpath,$(MBEDTLS_LIBDIR) -lmbedtls -lmbedx509 -lmbedcrypto
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -I$(MBEDTLS_INC) -Iinclude -Ishim
CFLAGS := $(CFLAGS_COMMON) -O2
SAN_FLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

SHIM_SRC := $(wildcard shim/*.c)
SHIM_HDR := $(wildcard shim/*.h include/*.h)
APP_SRC := $(wildcard tests/apps/*.c)
APP_HDR := $(wildcard tests/apps/*.h)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
# The pure parts the unit tests link directly (no interposition, no kernel).
UNIT_LIB_SRC := $(filter-out shim/interpose.c,$(SHIM_SRC))

LIB := $(BUILD)/libktlsshim.so
APPS := $(BUILD)/apps/mbed-server $(BUILD)/apps/mbed-client
UNITS := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))
TOOLS := $(BUILD)/tools/ktls-probe
FAULT_LIB := $(BUILD)/tests/librefuse-sockopt.so
SAN_LIB := $(BUILD)/asan/libktlsshim.so
SAN_APPS := $(BUILD)/asan/apps/mbed-server $(BUILD)/asan/apps/mbed-client
SAN_UNITS := $(patsubst tests/unit/%.c,$(BUILD)/asan/unit/%,$(UNIT_SRC))

.PHONY: all san test demo clean deps
all: $(BUILD)/config.mk $(LIB) $(APPS) $(UNITS) $(TOOLS) $(FAULT_LIB)
	@echo "ktlsshim: built against Mbed TLS $(MBEDTLS_VERSION) ($(MBEDTLS_LIBDIR))"
san: $(SAN_LIB) $(SAN_APPS) $(SAN_UNITS)
deps: $(BUILD)/config.mk

$(LIB): $(SHIM_SRC) $(SHIM_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -shared -o $@ $(SHIM_SRC) $(MBEDTLS_LIBS) -ldl -lpthread
$(SAN_LIB): $(SHIM_SRC) $(SHIM_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -fPIC -fvisibility=hidden -shared -o $@ $(SHIM_SRC) $(MBEDTLS_LIBS) -ldl -lpthread

$(BUILD)/apps/%: tests/apps/%.c $(filter-out tests/apps/mbed-%.c,$(APP_SRC)) $(APP_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(filter-out tests/apps/mbed-%.c,$(APP_SRC)) $(MBEDTLS_LIBS) -lpthread
$(BUILD)/asan/apps/%: tests/apps/%.c $(filter-out tests/apps/mbed-%.c,$(APP_SRC)) $(APP_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -o $@ $< $(filter-out tests/apps/mbed-%.c,$(APP_SRC)) $(MBEDTLS_LIBS) -lpthread

$(BUILD)/unit/%: tests/unit/%.c $(UNIT_LIB_SRC) $(SHIM_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(UNIT_LIB_SRC) $(MBEDTLS_LIBS) -ldl -lpthread
$(BUILD)/asan/unit/%: tests/unit/%.c $(UNIT_LIB_SRC) $(SHIM_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -o $@ $< $(UNIT_LIB_SRC) $(MBEDTLS_LIBS) -ldl -lpthread

$(BUILD)/tools/%: tools/%.c $(UNIT_LIB_SRC) $(SHIM_HDR) $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(UNIT_LIB_SRC) $(MBEDTLS_LIBS) -ldl -lpthread

test: all san
	@tools/run-tests

demo: all
	@tools/demo

clean:
	rm -rf $(BUILD)

# Test-only fault injection (never installed).
$(FAULT_LIB): tests/fault/refuse-sockopt.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $< -ldl
