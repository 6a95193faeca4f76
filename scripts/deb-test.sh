#!/usr/bin/env bash
# deb-test.sh — install the picoflow .deb on this machine, use it, purge it
# and check that nothing is left. Needs root. Idempotent and self-cleaning:
# a package left by an interrupted earlier run is purged first, the package
# is purged again on any exit, and a lock keeps two runs from overlapping.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/deb-test.sh [--dist DIR | DEB]

Installs DEB (default: the newest dist/picoflow_*_amd64.deb) with dpkg -i,
runs picoflow version, picoflow validate /etc/picoflow/workflows and the
example workflow as the picoflow user, then purges the package and checks
that none of its files, /etc/picoflow, /var/lib/picoflow and the picoflow
user and group are left.
EOF
}

log() { printf 'deb-test: %s\n' "$*" >&2; }
die() { printf 'deb-test: FAIL: %s\n' "$*" >&2; exit 1; }

dist="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/dist"
deb=""
while [[ $# -gt 0 ]]; do
	case "$1" in
	--dist) [[ $# -ge 2 ]] || die "--dist needs a value"; dist="$2"; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	-*) usage >&2; exit 2 ;;
	*) deb="$1"; shift ;;
	esac
done
if [[ -z "${deb}" ]]; then
	# shellcheck disable=SC2012 # names are ours: picoflow_VERSION_amd64.deb
	deb="$(ls -t "${dist}"/picoflow_*_amd64.deb 2>/dev/null | head -n 1)"
fi
[[ -f "${deb}" ]] || die "no package (make deb): ${deb:-${dist}/picoflow_*_amd64.deb}"
[[ "$(id -u)" = 0 ]] || die "needs root (dpkg -i)"
[[ "$(dpkg --print-architecture)" = amd64 ]] || { log "not an amd64 machine: skipped"; exit 0; }

exec 9>/run/lock/picoflow-deb-test.lock
flock -w 600 9 || die "another deb-test holds /run/lock/picoflow-deb-test.lock"

purge() {
	if dpkg-query -W -f='${Status}' picoflow 2>/dev/null | grep -q 'installed\|config-files'; then
		dpkg --purge picoflow >/dev/null
	fi
}
trap purge EXIT
purge # left over from an interrupted run

files="$(dpkg-deb --fsys-tarfile "${deb}" | tar -t | sed 's|^\./|/|' | grep -v '/$')"

log "installing ${deb}"
dpkg -i "${deb}" >/dev/null || die "dpkg -i failed"
picoflow version || die "picoflow version"
picoflow validate /etc/picoflow/workflows || die "picoflow validate /etc/picoflow/workflows"
picoflow validate --config /etc/picoflow/config.yaml || die "the packaged config is invalid"
getent passwd picoflow >/dev/null || die "no picoflow user"
[[ "$(stat -c %U:%G:%a /var/lib/picoflow)" = picoflow:picoflow:750 ]] || die "/var/lib/picoflow: $(stat -c %U:%G:%a /var/lib/picoflow)"
[[ -f /etc/systemd/system/multi-user.target.wants/picoflow.service ]] && die "the service was enabled on install"
man -w picoflow >/dev/null 2>&1 || [[ -f /usr/share/man/man1/picoflow.1.gz ]] || die "no man page"
grep -qx /etc/picoflow/config.yaml /var/lib/dpkg/info/picoflow.conffiles || die "config.yaml is not a conffile"
if command -v systemd-analyze >/dev/null; then
	# The unit with its drop-in: unknown keys and bad values are warnings.
	bad="$(systemd-analyze verify picoflow.service 2>&1 | grep picoflow || true)"
	[[ -z "${bad}" ]] || die "systemd-analyze verify picoflow.service: ${bad}"
fi

log "running the example as the picoflow user"
runuser -u picoflow -- picoflow run --home /var/lib/picoflow \
	--param DEMO_DIR=/var/lib/picoflow/example-demo /etc/picoflow/workflows/example.yaml ||
	die "run as the picoflow user"
runuser -u picoflow -- picoflow history --home /var/lib/picoflow example-backup | grep -q success ||
	die "the run is not in the history"
[[ -z "$(find /var/lib/picoflow ! -user picoflow -print -quit)" ]] || die "files in /var/lib/picoflow not owned by picoflow"

log "purging"
dpkg --purge picoflow >/dev/null || die "dpkg --purge failed"
left=()
while IFS= read -r f; do
	[[ -e "${f}" || -L "${f}" ]] && left+=("${f}")
done <<<"${files}"
for p in /etc/picoflow /var/lib/picoflow /lib/systemd/system/picoflow.service.d; do
	[[ -e "${p}" ]] && left+=("${p}")
done
getent passwd picoflow >/dev/null && left+=("user picoflow")
getent group picoflow >/dev/null && left+=("group picoflow")
dpkg-query -W picoflow >/dev/null 2>&1 && left+=("dpkg database entry")
[[ ${#left[@]} -eq 0 ]] || die "left after purge: ${left[*]}"
log "ok: installed, ran as picoflow, purged without a trace"
