#!/bin/sh
# Regenerate the build system. With --install-deps, first apt-install every
# Debian package the build and the test suite need that is missing (and
# nothing when all are there).
set -e
cd "$(dirname "$0")"

if [ "${1:-}" = "--install-deps" ]; then
	pkgs="autoconf automake libtool pkg-config make gcc libuv1-dev libinih-dev libsystemd-dev libcriterion-dev"
	missing=""
	for p in $pkgs; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "autogen.sh: installing:$missing"
		if [ "$(id -u)" -ne 0 ]; then
			echo "autogen.sh: need root to install packages" >&2
			exit 1
		fi
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
	fi
	shift
fi
autoreconf --install --force
