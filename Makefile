# PicoFlow. `make run` builds and runs the example workflow; `make test`
# installs what the tests need and runs the whole suite.
GO      ?= go
BIN     := bin/picoflow
DEMO    := .demo
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/picoflow/picoflow/cli.version=$(VERSION)
# Executions per fuzz target. A count, not a duration: with a duration Go
# 1.26's fuzz coordinator can fail a target with a spurious "context
# deadline exceeded" (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 60000x

.PHONY: all build run test unit fuzz vet deps bench clean edge deb deb-test darwin powerloss

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/picoflow

run: build
	$(BIN) init --force $(DEMO)
	$(BIN) validate $(DEMO)/example.yaml
	$(BIN) run --home $(DEMO)/home $(DEMO)/example.yaml

deps:
	bash scripts/deps.sh

vet:
	$(GO) mod tidy -diff
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	shellcheck -x scripts/*.sh scripts/deb/postinst scripts/deb/prerm scripts/deb/postrm .ci/run
	cd examples/alerts && promtool check rules picoflow.rules.yml && promtool test rules picoflow.rules.test.yml

unit:
	$(GO) test -race -count=1 ./...

# Brief seeded fuzzing of every decoder and parser.
FUZZ_TARGETS := ./journal:FuzzDecode ./journal:FuzzWalkSegment ./journal:FuzzSalvageManifest ./engine/workflow:FuzzParse ./engine/schedule:FuzzNext \
	./executors/secret:FuzzWriter ./cli/config:FuzzParse ./cli:FuzzParseStat ./cli:FuzzParseWhen \
	./cli/dag:FuzzPlace ./cli/web:FuzzFilter

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} $${t##*:} for $(FUZZTIME)"; \
		out=$$($(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) 2>&1) || \
			{ echo "$$out"; exit 1; }; \
	done

# The edge builds: cross-compile (zig, cached under ~/.cache/picoflow),
# check the size budget, run the ARM binaries under qemu.
edge: size qemu-smoke

# Debian packages (armhf, arm64, amd64) from the release binaries, checked
# with lintian; deb-test installs the amd64 one here (root), runs it, purges it.
deb: release
	bash scripts/deb.sh --dist $(RELEASE_OUT)

deb-test: deb
	bash scripts/deb-test.sh --dist $(RELEASE_OUT)

# macOS is a development platform: vet for both Mac architectures and build
# the binary (see scripts/darwin.sh for what is built and how).
darwin:
	bash scripts/darwin.sh

test: deps vet unit fuzz edge darwin deb-test

# The power-loss torture alone, long: its home on lazyfs (a FUSE file system
# that forgets what was not fsynced), POWERLOSS_TRIALS trials from
# POWERLOSS_SEED (default: the clock). Needs root and /dev/fuse. `make unit`
# runs its short form (8 trials).
POWERLOSS_TRIALS ?= 400
powerloss: deps
	PICOFLOW_POWERLOSS_TRIALS=$(POWERLOSS_TRIALS) $(if $(POWERLOSS_SEED),PICOFLOW_POWERLOSS_SEED=$(POWERLOSS_SEED)) \
		$(GO) test -count=1 -timeout 3h -run '^TestPowerLoss$$' -v ./cli/

# Measures on this machine and rewrites BENCHMARKS.md (about 5 minutes);
# BENCH_FLAGS=--quick for a shorter run, --release to rebuild dist/ first.
bench:
	bash scripts/bench.sh $(BENCH_FLAGS)

clean:
	rm -rf bin dist $(DEMO)

-include scripts/Makefile.release.mk
