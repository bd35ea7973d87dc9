# nvsgen - build, test and install.
#
#   make          build the Lua module in-tree (build/nvsgen/core.so)
#   make demo     build, then run `lua gen.lua` (ten units) and each example recipe into demo-out/
#   make test     the C core's tests, then every spec under Lua 5.4 (slow ones too); ends with
#                 "N passed, N failed"
#   make asan     the same specs against an AddressSanitizer + UBSan build
#   make lint     luacheck and cppcheck
#   make bench    the throughput benchmark (figures on stdout)
#   make fuzz     libFuzzer targets for a bounded time (FUZZ_SECONDS each)
#   make install  install module and scripts under PREFIX (or use luarocks make)
#
# Every target that runs something first installs missing Debian packages
# (scripts/ensure-deps: apt-get as root, otherwise it prints the command).

LUA ?= lua5.4
LUA_VERSION = 5.4
PKG_CONFIG ?= pkg-config
CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
LUA_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_SHAREDIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
BINDIR ?= $(PREFIX)/bin
OTHER_LUA_VERSIONS = 5.1 5.2 5.3

LUA_CFLAGS := $(shell $(PKG_CONFIG) --cflags lua$(LUA_VERSION) 2>/dev/null)
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags zlib libcrypto 2>/dev/null)
# -pthread: the random pool of nvs_crypto takes a lock.
DEP_LIBS := $(shell $(PKG_CONFIG) --libs zlib libcrypto 2>/dev/null || echo -lz -lcrypto) -pthread

WARNINGS = -Wall -Wextra -Werror -pedantic -Wshadow -Wmissing-prototypes \
           -Wstrict-prototypes -Wpointer-arith -Wcast-qual
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC $(WARNINGS) $(CFLAGS) \
             $(LUA_CFLAGS) $(DEP_CFLAGS)

CORE_SRC = csrc/nvs_format.c csrc/nvs_encoder.c csrc/nvs_codec.c csrc/nvs_file.c csrc/nvs_proc.c \
           csrc/nvs_crypto.c csrc/nvs_reader.c csrc/nvs_csv.c csrc/nvs_keymap.c \
           csrc/nvs_identity.c csrc/nvs_matter.c csrc/nvs_mfg.c csrc/nvs_stage.c
BINDING_SRC = csrc/lnvsgen.c
HEADERS = $(wildcard csrc/*.h)
MODULE = build/nvsgen/core.so
ASAN_MODULE = build/asan/nvsgen/core.so

BUSTED = busted --lua=$(LUA)
SANITIZE = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LUA_MODULES = $(wildcard lua/nvsgen/*.lua lua/nvsgen/*/*.lua)
SCRIPTS = $(wildcard bin/*.lua)

.PHONY: all deps demo test ctest asan lint bench fuzz install uninstall clean

all: $(MODULE)

deps:
	@scripts/ensure-deps

$(MODULE): $(CORE_SRC) $(BINDING_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -shared -o $@ $(CORE_SRC) $(BINDING_SRC) $(DEP_LIBS)

$(ASAN_MODULE): $(CORE_SRC) $(BINDING_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SANITIZE) -shared -o $@ $(CORE_SRC) $(BINDING_SRC) $(DEP_LIBS)

demo: deps
	@$(MAKE) --no-print-directory all
	lua gen.lua --serial-range 1000-1009 --outdir demo-out/gen
	@for r in mass_prod certificates family_lite family_pro wifi_calibration encrypted \
	        matter cloud_identity; do \
	    echo "lua examples/$$r.lua --serial-range 1000-1004 --outdir demo-out/$$r --csv"; \
	    lua examples/$$r.lua --serial-range 1000-1004 --outdir demo-out/$$r --csv || exit 1; done
	@echo "lua examples/two_partitions.lua --serial-range 1000-1004 --outdir demo-out/two_partitions --merged --hex"
	@lua examples/two_partitions.lua --serial-range 1000-1004 --outdir demo-out/two_partitions --merged --hex

# The C core's own tests (crypto and reader against the vectors, identity and
# Matter against the published examples), then the
# specs; busted's closing line "N passed, N failed" is the run's last line.
CTESTS = build/test_crypto build/test_reader build/test_identity build/test_stage
VECTORS = spec/fixtures/vectors

build/test_%: csrc/test/test_%.c $(CORE_SRC) $(HEADERS)
	@mkdir -p build
	$(CC) $(ALL_CFLAGS) -Icsrc -o $@ $< $(CORE_SRC) $(DEP_LIBS)

ctest: $(CTESTS)
	build/test_crypto $(VECTORS)/idf-samples $(VECTORS)/random
	build/test_reader $$(for d in $(VECTORS)/*/*/; do \
	    case "$$(head -n 1 $$d/args.txt 2>/dev/null)" in generate|decrypt) echo $$d/expected.bin;; esac; done)
	build/test_identity
	build/test_stage

# Specs tagged slow (whole batches in processes of their own: signals, a
# full disk, two runs at once) are left out of a bare busted run, not here.
test: deps
	@$(MAKE) --no-print-directory all ctest
	$(BUSTED) --exclude-tags=none

# The interpreter is not instrumented, so the sanitizer runtime is preloaded.
asan: deps
	@$(MAKE) --no-print-directory $(ASAN_MODULE)
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	NVSGEN_CPATH=build/asan/?.so $(BUSTED)

lint: deps
	@scripts/ensure-deps lua-check cppcheck
	luacheck lua bin spec examples gen.lua bench
	cppcheck --quiet --enable=warning,style,performance,portability --std=c99 \
	    --error-exitcode=1 --inline-suppr --suppress=toomanyconfigs $(LUA_CFLAGS) -Icsrc csrc fuzz bench

bench: deps
	@$(MAKE) --no-print-directory all build/bench-floor
	$(LUA) bench/run.lua

# libFuzzer targets, built with clang and the sanitizers, seeded from the
# vectors; each runs FUZZ_SECONDS. The corpus stays in build/fuzz.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
              -Icsrc $(LUA_CFLAGS) $(DEP_CFLAGS)
FUZZ = build/fuzz

fuzz: deps
	@scripts/ensure-deps clang libclang-rt-14-dev liblua5.4-dev
	@mkdir -p $(FUZZ)/reader-corpus $(FUZZ)/reader-seeds $(FUZZ)/csv-corpus $(FUZZ)/csv-seeds
	@mkdir -p $(FUZZ)/identity-corpus $(FUZZ)/identity-seeds
	clang $(FUZZ_CFLAGS) -o $(FUZZ)/fuzz_identity fuzz/fuzz_identity.c csrc/nvs_identity.c \
	    csrc/nvs_matter.c csrc/nvs_crypto.c csrc/nvs_format.c $(DEP_LIBS)
	cp examples/matter/*.pem examples/cloud/*.pem $(FUZZ)/identity-seeds/
	clang $(FUZZ_CFLAGS) -o $(FUZZ)/fuzz_reader fuzz/fuzz_reader.c csrc/nvs_reader.c csrc/nvs_keymap.c csrc/nvs_format.c $(DEP_LIBS)
	clang $(FUZZ_CFLAGS) -DNVSGEN_ROOT='"$(CURDIR)"' -o $(FUZZ)/fuzz_csv fuzz/fuzz_csv.c \
	    $(CORE_SRC) $(BINDING_SRC) $(DEP_LIBS) -llua$(LUA_VERSION)
	i=0; for f in spec/fixtures/vectors/*/*/expected.bin; do i=$$((i+1)); \
	    cp "$$f" $(FUZZ)/reader-seeds/s$$i.bin; \
	    { cat "$$f"; printf '\007'; } > $(FUZZ)/reader-seeds/s$${i}_fix.bin; done
	i=0; for f in spec/fixtures/vectors/*/*/*.csv spec/fixtures/vectors/mfg-samples/*.csv; do \
	    i=$$((i+1)); cp "$$f" $(FUZZ)/csv-seeds/c$$i.csv; done
	$(FUZZ)/fuzz_reader -max_len=65537 -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(FUZZ)/reader-corpus $(FUZZ)/reader-seeds
	$(FUZZ)/fuzz_csv -max_len=16384 -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(FUZZ)/csv-corpus $(FUZZ)/csv-seeds
	$(FUZZ)/fuzz_identity -max_len=8192 -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(FUZZ)/identity-corpus $(FUZZ)/identity-seeds

install: $(MODULE)
	install -d $(DESTDIR)$(LUA_LIBDIR)/nvsgen $(DESTDIR)$(LUA_SHAREDIR)/nvsgen/cli $(DESTDIR)$(BINDIR)
	install -m755 $(MODULE) $(DESTDIR)$(LUA_LIBDIR)/nvsgen/core.so
	for f in $(LUA_MODULES); do \
	    install -m644 $$f $(DESTDIR)$(LUA_SHAREDIR)/$${f#lua/}; done
	for f in $(SCRIPTS); do \
	    install -m755 $$f $(DESTDIR)$(BINDIR)/$$(basename $$f .lua); done
	install -m755 gen.lua $(DESTDIR)$(BINDIR)/nvsgen-gen
	# `lua my_recipe.lua` where `lua` is 5.1 to 5.3 finds nvsgen.recipe there,
	# as the module that starts the recipe again under Lua 5.4.
	for v in $(OTHER_LUA_VERSIONS); do \
	    install -d $(DESTDIR)$(PREFIX)/share/lua/$$v/nvsgen; \
	    install -m644 lua/nvsgen/lua54.lua $(DESTDIR)$(PREFIX)/share/lua/$$v/nvsgen/recipe.lua; done

uninstall:
	rm -rf $(DESTDIR)$(LUA_LIBDIR)/nvsgen $(DESTDIR)$(LUA_SHAREDIR)/nvsgen
	for f in $(SCRIPTS); do rm -f $(DESTDIR)$(BINDIR)/$$(basename $$f .lua); done
	rm -f $(DESTDIR)$(BINDIR)/nvsgen-gen
	for v in $(OTHER_LUA_VERSIONS); do rm -rf $(DESTDIR)$(PREFIX)/share/lua/$$v/nvsgen; done

# The benchmark's reference loops in C: only writing files (the floor), and
# the work every image needs (pending file, SHA-256, rename), with or without
# a key per unit (key made, entries encrypted, keys file), the work every
# unit of mfg_gen needs (plain and with --keygen), and a Matter unit's (W2).
# They build their images with the project's own C core, as the module does.
build/bench-floor: bench/floor.c bench/matter_unit.c bench/matter_unit.h $(CORE_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -o $@ bench/floor.c bench/matter_unit.c $(CORE_SRC) $(DEP_LIBS)

clean:
	rm -rf build
