#!/usr/bin/env bash
# darwin.sh — keep PicoFlow building on macOS, a development platform.
#
# Vets every package (tests included) and compiles the binary for
# darwin/arm64 and darwin/amd64. Both run with CGO_ENABLED=0: cross-compiling
# the cgo parts for macOS needs the macOS SDK, which zig does not ship in
# full (VictoriaMetrics/metrics includes <mach/mach_vm.h>, which zig 0.11
# lacks). Without cgo there is no SQLite, so the binary built here is only a
# compile check and is thrown away. On a Mac (Xcode command line tools
# installed) build the real one with:  go build -o picoflow ./cmd/picoflow
set -euo pipefail

usage() {
	cat <<'TXT'
Usage: scripts/darwin.sh

GOOS=darwin go vet ./... and go build ./cmd/picoflow for arm64 and amd64
(CGO_ENABLED=0: a compile check; see the comment at the top of this file).
TXT
}
case "${1:-}" in
-h | --help) usage; exit 0 ;;
"") ;;
*) usage >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$(mktemp -d "${TMPDIR:-/tmp}/picoflow-darwin.XXXXXX")"
trap 'rm -rf "${out}"' EXIT
for arch in arm64 amd64; do
	echo "darwin/${arch}: go vet ./..."
	GOOS=darwin GOARCH="${arch}" CGO_ENABLED=0 go vet ./...
	echo "darwin/${arch}: go build ./cmd/picoflow"
	GOOS=darwin GOARCH="${arch}" CGO_ENABLED=0 go build -o "${out}/picoflow-darwin-${arch}" ./cmd/picoflow
done
echo "darwin: ok"
