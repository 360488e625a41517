#!/usr/bin/env bash
# Fuzzes for longer than the test suite does (tests/fuzz/README.md): builds
# the fuzz targets in build-fuzz (clang, SB_FUZZ=ON), then runs each target
# named, or all of them one after the other, for the given time on all
# cores (libFuzzer's -fork).  Each target keeps its growing corpus and its
# crashes in a work directory outside the source tree, so that a later run
# goes on from where this one stopped; the seeds in tests/fuzz/seeds are
# read, never written.
#   scripts/fuzz.sh [-t SECONDS] [-j JOBS] [-w WORKDIR] [TARGET...]
#     -t  seconds per target (default 600)
#     -j  parallel fuzzing processes (default: the number of cores)
#     -w  work directory (default ${TMPDIR:-/tmp}/switchboard-fuzz)
#   TARGET: codec wsguard utf8 netaddr config webroot (default: all)
# Exits non-zero when a target found a crash; says where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

seconds=600
jobs=$(nproc)
work=${TMPDIR:-/tmp}/switchboard-fuzz
while getopts "t:j:w:h" opt; do
	case $opt in
	t) seconds=$OPTARG ;;
	j) jobs=$OPTARG ;;
	w) work=$OPTARG ;;
	*) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[[ "$seconds" =~ ^[1-9][0-9]*$ && "$jobs" =~ ^[1-9][0-9]*$ ]] || {
	echo "-t and -j take whole numbers" >&2
	exit 2
}

all=$(sed -n 's/^set(SB_FUZZ_TARGETS \(.*\))$/\1/p' tests/fuzz/CMakeLists.txt)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && read -ra targets <<<"$all"
for t in "${targets[@]}"; do
	[[ " $all " == *" $t "* ]] || { echo "unknown target '$t' (one of: $all)" >&2; exit 2; }
done

build="$top/build-fuzz"
echo "=== building the fuzz targets in $build" >&2
CC=${CC:-clang} cmake -S . -B "$build" -DSB_FUZZ=ON >/dev/null
cmake --build "$build" --target fuzz_all -j"$(nproc)" >/dev/null

status=0
for t in "${targets[@]}"; do
	dir="$work/$t"
	mkdir -p "$dir/corpus" "$dir/crashes"
	echo "=== $t: ${seconds}s on $jobs process(es); corpus $dir/corpus" >&2
	# New inputs go to the first corpus directory; the seeds are only read.
	set +e
	"$build/tests/fuzz/fuzz_$t" -fork="$jobs" -max_total_time="$seconds" \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/crashes/" \
		"$dir/corpus" "$top/tests/fuzz/seeds/$t" >"$dir/log" 2>&1
	rc=$?
	set -e
	grep -E '^#[0-9]+: cov:' "$dir/log" | tail -1 >&2 || true
	if [ $rc -ne 0 ] || [ -n "$(ls -A "$dir/crashes")" ]; then
		status=1
		echo "=== $t: FAILED (exit $rc); crashes in $dir/crashes, log in $dir/log:" >&2
		ls -1 "$dir/crashes" >&2
	fi
done
exit $status
