#!/bin/sh
# Judge the valgrind logs of `make check-valgrind` (one per process, named
# SUITE.TEST.PROGRAM.PID.vg by tests/helpers/harness.c): print a table per
# test suite and program, then every problem, and exit 1 if any log shows
#   - a memcheck error (ERROR SUMMARY above 0; definite leaks count too),
#   - definitely lost memory,
#   - a descriptor left open at exit other than 0, 1, 2 and those the
#     process inherited ("<inherited from parent>"), by one of the programs
#     handoffd ships (handoffd, handoffctl, handoff-exec); not checked for
#     a process a signal killed, which had no chance to close anything.
#     test-backend, a test helper that exit()s from wherever it is told to
#     stop, is shown in the table but not judged for descriptors.
# A log without a summary is a process killed by SIGKILL (or one that
# exec'd a program valgrind does not trace): counted, not judged.
# Usage: tests/check-valgrind.sh DIR
set -u
dir=${1:?usage: check-valgrind.sh DIR}
ls "$dir"/*.vg >/dev/null 2>&1 || { echo "check-valgrind: no valgrind logs in $dir" >&2; exit 1; }

# POSIX awk (Debian's mawk has no ENDFILE): one record per file, closed
# when the next file starts and at the end.
awk -v fdprogs=" handoffd handoffctl handoff-exec " '
function basename(p) { sub(/.*\//, "", p); return p }
function flush(   key, n, parts) {
	if (file == "")
		return
	n = split(basename(file), parts, ".")
	# SUITE.TEST.PROGRAM.PID.vg
	key = parts[1] " " parts[3]
	if (!(key in procs)) { keys[++nkeys] = key; procs[key] = 0; reports[key] = 0;
		errs[key] = 0; lost[key] = 0; fds[key] = 0; killed[key] = 0 }
	procs[key]++
	if (summary) {
		reports[key]++
		errs[key] += nerr
		lost[key] += nlost
		if (signal != "")
			killed[key]++
		else
			fds[key] += nfd
	}
	if (summary && (nerr > 0 || nlost > 0 || (signal == "" && nfd > 0 && index(fdprogs, " " parts[3] " ")))) {
		bad++
		problems = problems sprintf("%s: %d errors, %d bytes definitely lost, %d fds left open%s\n",
			file, nerr, nlost, signal == "" ? nfd : 0, fdlist == "" || signal != "" ? "" : " (" substr(fdlist, 2) ")")
	}
	file = ""
}
FNR == 1 { flush(); file = FILENAME; summary = 0; nerr = 0; nlost = 0; nfd = 0; fdlist = ""; signal = ""; pending = -1 }
{
	line = $0
	sub(/^==[0-9]+== ?/, "", line)
	if (pending >= 0) {
		if (line !~ /<inherited from parent>/ && pending > 2) { nfd++; fdlist = fdlist "," pending }
		pending = -1
	}
	if (line ~ /^Open .* [0-9]+:/ && (line ~ /^Open file descriptor/ || line ~ /socket/)) {
		s = line; sub(/:.*/, "", s); sub(/.* /, "", s); pending = s + 0
	} else if (line ~ /^ERROR SUMMARY: /) {
		summary = 1; s = line; sub(/^ERROR SUMMARY: /, "", s); sub(/ .*/, "", s); nerr = s + 0
	} else if (line ~ /definitely lost: /) {
		s = line; sub(/.*definitely lost: /, "", s); sub(/ .*/, "", s); gsub(/,/, "", s); nlost = s + 0
	} else if (line ~ /^Process terminating with default action of signal/) {
		s = line; sub(/.*signal /, "", s); signal = s
	}
}
END {
	flush()
	printf "%-14s %-13s %6s %8s %7s %11s %9s\n", "SUITE", "PROGRAM", "PROCS", "REPORTS", "ERRORS", "LOST(BYTES)", "OPEN FDS"
	for (i = 1; i <= nkeys; i++) {
		split(keys[i], kp, " ")
		printf "%-14s %-13s %6d %8d %7d %11d %9d\n", kp[1], kp[2], procs[keys[i]], reports[keys[i]],
			errs[keys[i]], lost[keys[i]], fds[keys[i]]
	}
	printf "(REPORTS: processes that ended with a valgrind summary; the others were killed by SIGKILL or exec'"'"'d.\n OPEN FDS: not counted for the %d processes a signal ended; judged for%sonly.)\n", totkilled(), fdprogs
	if (bad) {
		printf "\ncheck-valgrind: %d processes with problems:\n%s", bad, problems
		exit 1
	}
	print "check-valgrind: no errors, no definite leaks, no descriptor left open"
}
function totkilled(   i, t) { t = 0; for (i = 1; i <= nkeys; i++) t += killed[keys[i]]; return t }
' "$dir"/*.vg
