#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, once. Idempotent: a
# package already present is not touched, and apt is not called at all when
# nothing is missing.
set -euo pipefail

usage() {
	cat <<'TXT'
Usage: scripts/deps.sh [--check]

Installs the system packages PicoFlow's tests use (an OpenSSH server for the
ssh executor tests, promtool for the metrics lint, qemu-user-static for the
ARM smoke test, sqlite3 for inspecting databases, shellcheck for the
scripts, dpkg-deb, adduser and lintian for the Debian packages, unshare for
the read-only root test, zsh and fish to check the completion scripts,
chromium for the web UI's browser test, fuse3 for the power-loss test's file
system) with apt-get when missing.
  --check   only list what is missing; exit 1 if anything is
TXT
}

check=0
case "${1:-}" in
-h | --help) usage; exit 0 ;;
--check) check=1 ;;
"") ;;
*) usage >&2; exit 2 ;;
esac

# command -> Debian package
declare -A need=(
	[sshd]=openssh-server
	[ssh-keygen]=openssh-client
	[promtool]=prometheus
	[qemu-arm-static]=qemu-user-static
	[sqlite3]=sqlite3
	[shellcheck]=shellcheck
	[npm]=npm
	[/usr/bin/time]=time
	[lintian]=lintian
	[dpkg-deb]=dpkg
	[adduser]=adduser
	[zsh]=zsh
	[fish]=fish
	[unshare]=util-linux
	[chromium]=chromium
	[fusermount3]=fuse3
	[dot]=graphviz
)

missing=()
for cmd in "${!need[@]}"; do
	if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then
		missing+=("${need[$cmd]}")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$check" = 1 ]; then
	echo "missing packages: ${missing[*]}"
	exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		echo "deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
	$sudo apt-get update -qq
	$sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi
