#!/usr/bin/env bash
# Runs one fuzz target for a bounded time, as a test: first every seed (the
# regression inputs among them), then fuzzing from them.  The seeds are
# copied to a scratch corpus, so the source tree is never written; a crash
# is kept under ARTIFACT_DIR, named after the target.
#   tests/fuzz/run_target.sh TARGET_BINARY SEED_DIR SECONDS ARTIFACT_DIR
# Exits non-zero on any crash, leak, timeout, sanitizer report or failed
# check (libFuzzer's own exit status).
set -euo pipefail

if [ $# -ne 4 ]; then
	echo "usage: $0 TARGET_BINARY SEED_DIR SECONDS ARTIFACT_DIR" >&2
	exit 2
fi
bin=$1 seeds=$2 seconds=$3 artifacts=$4
name=$(basename "$bin")

scratch=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/corpus" "$artifacts"
cp -r "$seeds"/. "$scratch/corpus/"

# -timeout: one input that runs for seconds is a hang; -rss_limit_mb: a
# growth without bound is a failure too.
set +e
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
	"$scratch/corpus"
rc=$?
set -e
if [ $rc -ne 0 ]; then
	echo "$name failed (exit $rc); the input is in $artifacts (see tests/fuzz/README.md)" >&2
fi
exit $rc
