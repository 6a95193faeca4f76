# Edge release targets: static cross-builds with zig, size budget, qemu smoke.
# Included by the top-level Makefile (`include scripts/Makefile.release.mk`).
# Every variable is ?= so the including Makefile or the command line can
# override it, e.g. `make release RELEASE_TARGETS=armv7`.

# Directory of this file, so the scripts are found whatever the include path.
RELEASE_SCRIPTS := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

RELEASE_TARGETS ?= armv7 arm64 amd64
RELEASE_OUT     ?= dist
RELEASE_PKG     ?= ./cmd/picoflow
RELEASE_NAME    ?= picoflow
# Extra flags for scripts/size.sh, e.g. SIZE_FLAGS=--breakdown
SIZE_FLAGS      ?=
# Binaries that qemu-smoke runs: the ARM ones among RELEASE_TARGETS (or, if
# there are none, the others, which run natively).
QEMU_SMOKE_BINARIES ?= $(foreach t,$(or $(filter armv7 arm64,$(RELEASE_TARGETS)),$(RELEASE_TARGETS)),$(RELEASE_OUT)/$(RELEASE_NAME)-linux-$(t))

.PHONY: release size size-breakdown qemu-smoke install-zig test-release-flags

## install-zig: install the pinned zig used as the cgo cross C compiler
install-zig:
	$(RELEASE_SCRIPTS)/install-zig.sh

## release: static binaries for $(RELEASE_TARGETS) in $(RELEASE_OUT)/, plus SHA256SUMS
release:
	$(RELEASE_SCRIPTS)/release.sh --targets "$(RELEASE_TARGETS)" --out "$(RELEASE_OUT)" \
		--pkg "$(RELEASE_PKG)" --name "$(RELEASE_NAME)"

## size: print binary sizes, fail if one is over its budget (armv7 9,350,000 bytes, others 10 MiB)
size: release
	$(RELEASE_SCRIPTS)/size.sh --dist "$(RELEASE_OUT)" --name "$(RELEASE_NAME)" $(SIZE_FLAGS)

## size-breakdown: sizes plus the top packages of an unstripped armv7 build
size-breakdown: release
	$(RELEASE_SCRIPTS)/size.sh --dist "$(RELEASE_OUT)" --name "$(RELEASE_NAME)" \
		--pkg "$(RELEASE_PKG)" --breakdown $(SIZE_FLAGS)

## qemu-smoke: run version/validate/run/history of the ARM binaries under qemu
qemu-smoke: release
	$(RELEASE_SCRIPTS)/qemu-smoke.sh $(addprefix --binary ,$(QEMU_SMOKE_BINARIES))

## test-release-flags: run the Go tests on the host with the release's SQLite
## compile-time options and tags (they change SQL behaviour, e.g. SQLITE_DQS=0).
## Tags go through GOFLAGS so that `go build` run by tests gets them too.
test-release-flags:
	@eval "$$($(RELEASE_SCRIPTS)/release.sh --print-cgo-env)" && \
		echo "CGO_CFLAGS=\"$$CGO_CFLAGS\" GOFLAGS=\"$$GOFLAGS -tags=$$TAGS\" go test ./..." && \
		CGO_ENABLED=1 CGO_CFLAGS="$$CGO_CFLAGS" GOFLAGS="$$GOFLAGS -tags=$$TAGS" go test ./...
