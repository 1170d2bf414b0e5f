# xwalk: `make demo` shows the pools of a live nginx worker; `make test` runs
# every test against real processes. Both install what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := build

APT_PACKAGES := gdb lldb-16 python3-lldb-16 python3-drgn strace wrk build-essential dpkg-dev \
                libpcre3-dev zlib1g-dev libssl-dev nginx nginx-dev libnginx-mod-http-lua \
                protobuf-compiler golang-github-google-pprof-dev prometheus chromium-headless-shell \
                redis-server memcached python3-pyflakes python3-mypy
NATIVE := sampler/native/build/Release/xwalk_pvr.node sampler/native/build/Release/xwalk_perf.node sampler/native/build/Release/xwalk_bpf.node sampler/native/build/Release/xwalk_perf_stacks.node
WALKEE := test-targets/bin/walkee
CHURN  := test-targets/bin/churn
UNWINDEE := test-targets/bin/unwindee
NGINX  := build/nginx/nginx-1.22.1/objs/nginx
BUNDLES := dist/xsample.js dist/xsample-main.js dist/xgen.js
TS_SOURCES := $(shell find bin core generators printers sampler -name '*.ts' -o -name '*.py' 2>/dev/null)

.PHONY: fuzz deps build native walkee nginx nginx-v2debug debian-layout lua-layout redis redis-layout installed-layouts demo test test-unit bench soak typecheck regen clean docs

# apt packages, only when one is missing (apt-get update is slow).
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing" >&2; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  case " $$missing " in *" memcached "*) \
	    echo "stopping the memcached daemon Debian starts on install (tests start their own)" >&2; \
	    { systemctl disable --now memcached || { service memcached stop; update-rc.d memcached disable; }; } >/dev/null 2>&1 || true;; \
	  esac; \
	fi

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# npm ci builds them too (package.json's install script, what npm install -g runs): only a changed source rebuilds them here.
$(NATIVE) &: $(wildcard sampler/native/*.c sampler/native/*.h) sampler/native/binding.gyp | node_modules/.package-lock.json
	npx node-gyp rebuild -C sampler/native >/dev/null

# Everything in one file (starting node costs less than resolving and loading dozens of
# modules), but for execa, loaded only to run gdb; CommonJS dependencies get a require().
# Without blanks and comments: node reads and parses a third less before the first sample
# (`node --enable-source-maps` maps a stack trace back to the sources).
dist/%.js: bin/%.ts $(TS_SOURCES) node_modules/.package-lock.json
	npx esbuild $< --bundle --platform=node --format=esm --external:execa \
	  --banner:js="import { createRequire as __xwalkRequire } from 'node:module'; const require = __xwalkRequire(import.meta.url);" \
	  --minify-whitespace --sourcemap=linked --log-level=warning --outfile=$@
	@chmod +x $@

test-targets/bin/%: test-targets/%.c
	@mkdir -p $(@D)
	cc -g -O2 -Wall -Wextra -pthread -o $@ $<

# Built as Debian builds its packages: no -g, no frame pointers, unwound through .eh_frame alone.
$(UNWINDEE): test-targets/unwindee.c
	@mkdir -p $(@D)
	cc -O2 -fomit-frame-pointer -fasynchronous-unwind-tables -Wall -Wextra -o $@ $<

native: $(NATIVE)
walkee: $(WALKEE)
build: deps $(NATIVE) $(BUNDLES) $(WALKEE) $(CHURN) $(UNWINDEE)

nginx: deps
	bash test-targets/nginx/build.sh

# A second build with other configure options (struct fields move): the tests use it too.
nginx-v2debug: deps
	bash test-targets/nginx/build.sh v2debug

# The generated gdb and lldb extensions (committed; a test checks they are current).
regen: $(BUNDLES)
	node dist/xgen.js regen

# The layouts of Debian's own (stripped) builds, from probes (probes/*.sh, which an installed xgen runs
# too: xgen layout --for FILE) compiled from their Debian sources with Debian's flags (committed).
# Of nginx, against nginx-dev's configured source.
debian-layout: deps $(BUNDLES)
	bash probes/nginx.sh

# Of Debian's lua-nginx-module and OpenResty LuaJIT.
lua-layout: deps $(BUNDLES)
	bash probes/lua.sh

# Of Debian's redis-server.
redis-layout: deps $(BUNDLES)
	bash probes/redis.sh

# A debug redis-server from Debian's source of the installed redis-server, for the tests.
redis: deps
	bash test-targets/redis/build.sh

# Layouts for installed Debian builds that no committed layout covers (a newer point release): probed
# into build/installed-layouts/, a folder of packs that make test names in XWALK_PACKS.
installed-layouts: build nginx redis
	bash test-targets/installed-layouts.sh

typecheck: node_modules/.package-lock.json
	npx tsc -p .

demo: build nginx
	npx tsx test-targets/demo.ts

# The layouts probed for installed builds no committed layout covers join the packs' through XWALK_PACKS.
# tsc first: a type error fails make test before any test runs (test/python-lint.test.ts checks the Python).
test: build typecheck nginx nginx-v2debug redis installed-layouts
	XWALK_PACKS=$(CURDIR)/build/installed-layouts npx tap --reporter=tap test/*.test.ts

# The fast loop: the tests that need no nginx and no debugger session (walkee, schemas,
# the walk logic, the CLI; gcore may make a core), in under a minute.
UNIT_TESTS = $(shell grep -LE "lib/(nginx|debuggers)|bench/|'gdb'|lldb-16|drgn" test/*.test.ts)
test-unit: build
	npx tap --reporter=terse $(UNIT_TESTS)

# The pictures the docs show (docs/ngx-memory.svg and .png, drawn by chromium).
docs: build nginx
	npx tsx docs/pictures.ts

# The differential fuzzer (docs/fuzz.md): FUZZ_SEED, FUZZ_CASES, FUZZ_SECONDS, FUZZ_COLUMNS, FUZZ_DIR, FUZZ_SAVE=1.
fuzz: build
	npx tsx test/fuzz/run.ts

# Speed and stall against gdb, lldb, drgn and a C floor: writes docs/BENCHMARKS.md.
bench: build nginx
	npx tsx bench/run.ts

# Minutes of sampling a target that never holds still (XWALK_SOAK_MINUTES, default 2): writes bench/soak.json.
soak: build
	npx tsx bench/soak.ts

clean:
	rm -rf dist sampler/native/build test-targets/bin
