#!/bin/sh
# Runs every black-box test file, one node process each, as ctest does.
#
#   SWITCHBOARD_BIN=/path/to/build/switchboard tests/blackbox/run-all.sh [file.test.mjs ...]
#
# SWITCHBOARD_BIN is the server command line (split on spaces); without it
# build/switchboard at the top of the tree is used. SB_TEST_SCALE multiplies
# every waiting timeout (3 or more for sanitizer builds).
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here" || exit 1

if [ ! -d node_modules/ws ]; then
    npm ci --no-audit --no-fund >/dev/null || exit 1
fi
if [ -z "${SWITCHBOARD_BIN:-}" ]; then
    SWITCHBOARD_BIN="$here/../../build/switchboard"
    export SWITCHBOARD_BIN
fi

scale=${SB_TEST_SCALE:-1}
# per-test timeout cap in ms; the waits inside are scaled on their own
timeout=$(awk -v s="$scale" 'BEGIN { printf "%d", 120000 * (s < 1 ? 1 : s) }')

if [ $# -eq 0 ]; then
    set -- *.test.mjs
fi

failed=""
for name in "$@"; do
    file=${name%.test.mjs}.test.mjs
    printf '== %s\n' "$file"
    if ! node --test --test-reporter=spec --test-timeout="$timeout" "$file"; then
        failed="$failed $file"
    fi
done

if [ -n "$failed" ]; then
    printf '\nFAILED:%s\n' "$failed"
    exit 1
fi
printf '\nall passed\n'
