# mq: the verbs people type. The real work lives in CMake (CMakeLists.txt)
# and scripts/; this file only wraps them.
#
#   make deps          install the Debian packages the project needs (once)
#   make lint-deps     install the pinned OpenAPI linter (npm ci in tools/openapi-lint)
#   make lint-openapi  lint schemas/openapi.json with it (also the ctest openapi_lint)
#   make build         configure + build into $(BUILD_DIR)
#   make test          build, then run every ctest test (CTEST_ARGS="-L unit" for a subset)
#   make asan          the same under AddressSanitizer + UBSan, in $(ASAN_DIR)
#   make run / stop    local dev stack (redis, PostgreSQL, mq-api) via scripts/dev-stack
#   make bench         build, then bench/run-all
#   make fuzz          libFuzzer targets (clang) in $(FUZZ_DIR), each run FUZZ_SECONDS (fuzz/)
#   make format        clang-format -i;  make format-check: fail on unformatted code
#   make config-doc    regenerate docs/config.md from the settings registry (a test compares)
#   make install       build, then install into $(PREFIX) (default /usr/local; DESTDIR works)
#   make deb           build, then the Debian package (CPack) in $(BUILD_DIR)/mq_*.deb
#   make clean         remove the build directories (dev-stack data in .mq/ stays)

BUILD_DIR  ?= build
ASAN_DIR   ?= build-asan
JOBS       ?= 2
CMAKE_ARGS ?=
CTEST_ARGS ?=
CLANG_FORMAT ?= clang-format
PREFIX     ?= /usr/local
FUZZ_DIR   ?= build-fuzz
FUZZ_SECONDS ?= 60
# Every target by default; e.g. FUZZ_TARGETS="fuzz_time fuzz_url" for a few.
FUZZ_TARGETS ?= fuzz_envelope fuzz_batch_file fuzz_receipt fuzz_url fuzz_time \
	fuzz_http_request fuzz_resp fuzz_json fuzz_yaml fuzz_schema

# Every Debian 12 package the project needs to build, test, run and bench. The last line is
# packaging: man pages (help2man), `make deb` (file, dpkg-dev) and the packaging tests
# (systemd-analyze, zsh -n, docker-compose config); docs/decisions.md.
DEB_PACKAGES := \
	build-essential cmake ninja-build pkg-config git ca-certificates \
	libhiredis-dev libpqxx-dev libpq-dev nlohmann-json3-dev libspdlog-dev libfmt-dev \
	libyaml-cpp-dev catch2 libcli11-dev libboost-dev libboost-system-dev \
	libcurl4-openssl-dev libssl-dev libvalijson-dev libre2-dev libsimdjson-dev libcctz-dev tzdata prometheus-cpp-dev \
	redis-server redis-tools postgresql postgresql-contrib \
	wrk curl procps iproute2 python3 clang-format \
	help2man file dpkg-dev systemd zsh docker-compose prometheus

FORMAT_DIRS := $(wildcard common apps tests fuzz)
FORMAT_FILES = $(shell find $(FORMAT_DIRS) -type f \( -name '*.cpp' -o -name '*.cc' \
	-o -name '*.hpp' -o -name '*.h' \) 2>/dev/null | sort)

.PHONY: build deps lint-deps lint-openapi test asan asan-build run stop bench fuzz fuzz-build format format-check clean help install deb config-doc

build: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMQ_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(BUILD_DIR) -j$(JOBS)

# Fast and root-free when everything is present: one dpkg-query, no apt.
deps:
	@command -v dpkg-query >/dev/null 2>&1 || { \
	    echo "make deps: no dpkg-query; this is not Debian. Install the equivalents of:"; \
	    echo "  $(DEB_PACKAGES)"; exit 1; }; \
	installed=" $$(dpkg-query -W -f='$${Package} $${db:Status-Status}\n' $(DEB_PACKAGES) 2>/dev/null \
	    | awk '$$2 == "installed" { print $$1 }' | tr '\n' ' ') "; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
	    case "$$installed" in *" $$p "*) ;; *) missing="$$missing $$p" ;; esac; \
	done; \
	if [ -z "$$missing" ]; then echo "make deps: all Debian packages present"; exit 0; fi; \
	echo "make deps: installing:$$missing"; \
	sudo=""; \
	if [ "$$(id -u)" -ne 0 ]; then \
	    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	    else echo "make deps: not root and no sudo; as root run: apt-get install$$missing"; exit 1; fi; \
	fi; \
	apt="$$sudo env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0"; \
	for try in 1 2 3; do \
	    $$apt update && break; \
	    [ $$try -lt 3 ] || { echo "make deps: apt-get update failed"; exit 1; }; sleep 10; \
	done; \
	for try in 1 2 3; do \
	    $$apt install -y --no-install-recommends \
	        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $$missing && break; \
	    [ $$try -lt 3 ] || { echo "make deps: apt-get install failed"; exit 1; }; sleep 10; \
	done

# The OpenAPI linter the ctest openapi_lint runs: @redocly/cli pinned in
# tools/openapi-lint/package-lock.json. Node and npm from Debian when there is no npm (Debian
# 12's Node 18 runs the pinned 1.x CLI); `npm ci` only when the install is missing or older
# than the lock file. docs/api.md, docs/decisions.md.
LINT_DIR := tools/openapi-lint
lint-deps:
	@if ! command -v npm >/dev/null 2>&1; then \
	    echo "make lint-deps: installing nodejs npm"; \
	    sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0 update && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0 install -y \
	        --no-install-recommends nodejs npm || exit 1; \
	fi
	@if [ -x $(LINT_DIR)/node_modules/.bin/redocly ] && \
	    [ $(LINT_DIR)/node_modules/.package-lock.json -nt $(LINT_DIR)/package-lock.json ]; then \
	    echo "make lint-deps: the OpenAPI linter is installed"; \
	else \
	    cd $(LINT_DIR) && for try in 1 2 3; do \
	        npm ci --no-audit --no-fund --loglevel=error && exit 0; sleep 10; \
	    done; echo "make lint-deps: npm ci failed"; exit 1; \
	fi

lint-openapi: lint-deps
	$(LINT_DIR)/run-lint

test: build
	@$(MAKE) --no-print-directory lint-deps || \
	    echo "make test: could not install the OpenAPI linter; the test openapi_lint will fail"
	cd $(BUILD_DIR) && ctest --output-on-failure --no-tests=error -j$(JOBS) $(CTEST_ARGS)

asan-build: deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMQ_SANITIZE=ON -DMQ_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(ASAN_DIR) -j$(JOBS)

asan: asan-build
	cd $(ASAN_DIR) && ctest --output-on-failure --no-tests=error -j$(JOBS) $(CTEST_ARGS)

# Binaries, man pages, completion, systemd units, examples (docs/deploy.md).
install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

deb: build
	cd $(BUILD_DIR) && cpack -G DEB -B $(abspath $(BUILD_DIR)) --config CPackConfig.cmake
	@ls -1 $(BUILD_DIR)/mq_*.deb

run: build
	MQ_BUILD_DIR=$(BUILD_DIR) scripts/dev-stack

stop:
	MQ_BUILD_DIR=$(BUILD_DIR) scripts/dev-stack stop

bench: build
	MQ_BUILD_DIR=$(BUILD_DIR) bench/run-all

# A separate clang build (never the gcc one): libraries instrumented for libFuzzer, ASan and
# UBSan. Each target starts from its committed corpus (fuzz/corpus/<target>, read-only)
# and writes new inputs to $(FUZZ_DIR)/corpus/<target>; a crash stops `make fuzz` with
# the reproducer in $(FUZZ_DIR)/crashes/. See docs/fuzzing.md.
fuzz-build:
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_CXX_COMPILER=clang++ -DMQ_FUZZ=ON -DMQ_BUILD_TESTS=OFF $(CMAKE_ARGS)
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target $(FUZZ_TARGETS)

fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/crashes
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$t; \
	    echo "== $$t: $(FUZZ_SECONDS) s"; \
	    $(FUZZ_DIR)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	        -max_len=65536 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/$$t- \
	        $(FUZZ_DIR)/corpus/$$t fuzz/corpus/$$t; \
	done

format:
	@command -v $(CLANG_FORMAT) >/dev/null 2>&1 || { echo "$(CLANG_FORMAT) not found (apt-get install clang-format)"; exit 1; }
	@if [ -n "$(strip $(FORMAT_FILES))" ]; then $(CLANG_FORMAT) -i $(FORMAT_FILES); fi

format-check:
	@command -v $(CLANG_FORMAT) >/dev/null 2>&1 || { echo "$(CLANG_FORMAT) not found (apt-get install clang-format)"; exit 1; }
	@if [ -n "$(strip $(FORMAT_FILES))" ]; then $(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES); fi

config-doc:
	cmake --build $(BUILD_DIR) --target mq-api -j $(JOBS)
	$(BUILD_DIR)/apps/mq-api/mq-api --print-config-doc > docs/config.md

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'
