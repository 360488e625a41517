#!/usr/bin/env bash
# Smoke test of sb-loadgen against a real server: every scenario for about two
# seconds with small counts, on a loopback port of the server's own choosing.
# Builds nothing.
#
#   bench/smoke.sh SERVER LOADGEN
#
# SERVER is the switchboard binary (or a server.js, run with node).  Checks
# that each run exits 0 and prints one JSON line with the expected fields,
# then stops the server with SIGTERM and checks that it exits 0.  Makes no
# timing assertions.  Exits non-zero on any failure.
set -uo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 SERVER LOADGEN" >&2
	exit 2
fi
server=$1
loadgen=$2
for f in "$server" "$loadgen"; do
	if [ ! -f "$f" ]; then
		echo "smoke: no such file: $f" >&2
		exit 2
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sb-smoke.XXXXXX")
server_pid=
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# The heartbeat is short so that the idle run answers the server's pings.
case "$server" in
*.js) node "$server" --port 0 --bind 127.0.0.1 --workers 2 --heartbeat 2 \
	>"$tmp/server.out" 2>"$tmp/server.err" & ;;
*) "$server" --port 0 --bind 127.0.0.1 --workers 2 --heartbeat 2 \
	>"$tmp/server.out" 2>"$tmp/server.err" & ;;
esac
server_pid=$!

port=
for _ in $(seq 1 300); do	# 30 s: a sanitizer build starts slowly
	port=$(sed -n 's/^switchboard listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/server.out")
	[ -n "$port" ] && break
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "smoke: the server exited before listening" >&2
		cat "$tmp/server.err" >&2
		exit 1
	fi
	sleep 0.1
done
if [ -z "$port" ]; then
	echo "smoke: the server did not print its listening line" >&2
	exit 1
fi

passed=0
failed=0

# field NAME: the raw value of "NAME" in the JSON line (names are unique)
field() {
	sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" "$tmp/out"
}

# check NAME ARGS...: one loadgen run and its checks
check() {
	local name=$1 rc lines ok=1 key v
	shift
	timeout -k 5 60 "$loadgen" --url "ws://127.0.0.1:$port/" --server-pid "$server_pid" \
		--json-only "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	lines=$(wc -l <"$tmp/out")
	if [ "$rc" -ne 0 ]; then
		echo "FAIL $name: exit status $rc"
		ok=0
	fi
	if [ "$lines" -ne 1 ] || ! grep -q '^{.*}$' "$tmp/out"; then
		echo "FAIL $name: expected one JSON line on stdout, got $lines line(s)"
		ok=0
	fi
	for key in '"ok":true' '"errors":0,' '"violations":0,' '"lost":0,' \
		"\"scenario\":\"$name\""; do
		if ! grep -qF "$key" "$tmp/out"; then
			echo "FAIL $name: no $key"
			ok=0
		fi
	done
	# numbers that must be there (not null) for this scenario
	for key in $NUMBERS loadgen_cpu_s server_cpu_s server_rss_kb_start server_rss_kb_end; do
		v=$(field "$key")
		if ! [[ "$v" =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then
			echo "FAIL $name: \"$key\" is '${v:-absent}', expected a number"
			ok=0
		fi
	done
	for key in p50 p90 p99 p999 max; do
		if [ -n "$LATENCY" ] && ! [[ "$(field "$key")" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
			echo "FAIL $name: latency_us.$key missing"
			ok=0
		fi
	done
	if [ -n "${EXPECT_JOINS:-}" ] && [ "$(field joins)" != "$EXPECT_JOINS" ]; then
		echo "FAIL $name: $(field joins) joins, expected $EXPECT_JOINS"
		ok=0
	fi
	if [ "$ok" -eq 1 ]; then
		echo "ok $name: $(sed -e 's/.*"params":{[^}]*},//' -e 's/,"notes".*//' "$tmp/out" | cut -c1-300)"
		passed=$((passed + 1))
	else
		echo "--- stdout:"; cat "$tmp/out"
		echo "--- stderr:"; tail -n 20 "$tmp/err"
		failed=$((failed + 1))
	fi
}

NUMBERS="msgs_per_s delivered server_cpu_us_per_msg" LATENCY=1 \
	check relay --scenario relay --peers 20 --window 2 --warmup 0.5 --duration 1.5
NUMBERS="deliveries_per_s delivered server_cpu_us_per_delivery" LATENCY=1 \
	check broadcast --scenario broadcast --peers 20 --room-size 5 --window 2 --warmup 0.5 --duration 1.5
NUMBERS="joins_per_s joins" LATENCY=1 EXPECT_JOINS=200 \
	check connect --scenario connect --peers 200
NUMBERS="joins_per_s joins" LATENCY=1 \
	check churn --scenario churn --peers 200 --warmup 0.5 --duration 1.5
NUMBERS="rss_per_conn_kb pings" LATENCY='' \
	check idle --scenario idle --peers 200 --duration 3

# stop the server: SIGTERM drains and exits 0
kill -TERM "$server_pid"
status=
for _ in $(seq 1 300); do
	if ! kill -0 "$server_pid" 2>/dev/null; then
		wait "$server_pid"
		status=$?
		break
	fi
	sleep 0.1
done
if [ -z "$status" ]; then
	echo "FAIL server: still running 30 s after SIGTERM"
	failed=$((failed + 1))
elif [ "$status" -ne 0 ]; then
	echo "FAIL server: exit status $status"
	tail -n 30 "$tmp/server.err"
	failed=$((failed + 1))
else
	passed=$((passed + 1))
fi
server_pid=

echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
