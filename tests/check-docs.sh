#!/bin/sh
# The shipped configs must pass `handoffd -t`, and every man page must render
# without groff warnings, so docs and configs cannot drift from the code.
# A config may name paths under /run: -t only parses, it binds nothing.
set -u
srcdir=${TOP_SRCDIR:-.}
HANDOFFD=${HANDOFFD:-./src/handoffd}
fail=0
for f in "$srcdir"/conf/handoffd.conf "$srcdir"/conf/examples/*.conf; do
	# inetd.conf samples are checked the way handoffd --inetd reads them.
	case $f in
	*/inetd.conf) how=--inetd;;
	*) how=-f;;
	esac
	if out=$("$HANDOFFD" -t "$how" "$f" 2>&1); then
		echo "ok: $f"
	else
		echo "FAIL: $f: $out"
		fail=1
	fi
done
# Every key config.c accepts has its own entry in handoffd.conf(5):
# a line starting .BI "KEY" " = " (or .B KEY for a key listed alone).
for k in $(grep -o 'strcmp(k, "[a-z_]*")' "$srcdir"/src/daemon/config.c | sed 's/.*"\(.*\)")/\1/'); do
	if grep -q -e "^\.BI $k \" = \"" -e "^\.B $k\$" "$srcdir"/man/handoffd.conf.5; then
		echo "ok: key $k documented"
	else
		echo "FAIL: key $k is not in man/handoffd.conf.5"
		fail=1
	fi
done
if command -v groff >/dev/null 2>&1; then
	for m in "$srcdir"/man/*.[0-9]; do
		w=$(groff -man -ww -z "$m" 2>&1)
		if [ -n "$w" ]; then
			echo "FAIL: $m: $w"
			fail=1
		else
			echo "ok: $m"
		fi
	done
else
	echo "groff not installed: man page rendering not checked"
fi
# The systemd units in contrib/systemd pass systemd-analyze verify (with
# ExecStart pointing at the built daemon and the man pages they cite
# findable), where the tool exists.
if command -v systemd-analyze >/dev/null 2>&1 && command -v man >/dev/null 2>&1; then
	tmp=$(mktemp -d)
	mkdir -p "$tmp/man/man5" "$tmp/man/man8" "$tmp/units"
	cp "$srcdir"/man/*.5 "$tmp/man/man5/"
	cp "$srcdir"/man/*.8 "$tmp/man/man8/"
	sed "s#/usr/sbin/handoffd#$HANDOFFD#" "$srcdir"/contrib/systemd/handoffd.service >"$tmp/units/handoffd.service"
	cp "$srcdir"/contrib/systemd/handoffd.socket "$tmp/units/"
	if out=$(cd "$tmp/units" && MANPATH="$tmp/man" systemd-analyze verify ./handoffd.service ./handoffd.socket 2>&1) &&
	   [ -z "$out" ]; then
		echo "ok: contrib/systemd units verify"
	else
		echo "FAIL: contrib/systemd units: $out"
		fail=1
	fi
	rm -rf "$tmp"
else
	echo "systemd-analyze or man not installed: contrib/systemd units not verified"
fi
exit $fail
