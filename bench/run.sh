#!/usr/bin/env bash
# Builds switchboard and the load generator (Release), sets up the Node.js
# reference server next to them, and runs the benchmark suite: every scenario
# against both servers on the same pinned cores, medians of 5 runs, printed
# as a markdown table.  Takes about 15 minutes; arguments go to bench.mjs
# (--runs N, --only relay-w2,idle, --quick, --out FILE, --baseline PATH).
#
#   bench/run.sh --cluster [--runs N] [--only relay-w16,latency] [--quick] [--out FILE]
#
# runs the cluster benchmarks instead (cluster.mjs: two nodes and a Redis
# of their own beside one node, alternating; about 20 minutes); no reference.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

scripts/deps.sh --test
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" --target switchboard sb-loadgen >/dev/null

if [ "${1:-}" = --cluster ]; then
	shift
	exec node bench/cluster.mjs --server build-bench/switchboard \
		--loadgen build-bench/bench/sb-loadgen "$@"
fi

# The reference lives in the shared folder, read-only: copy it out.
ref_src="${SB_REFERENCE:-$top/../shared/reference}"
ref="$top/build-bench/reference"
if [ ! -f "$ref/node_modules/ws/package.json" ]; then
	rm -rf "$ref"
	cp -r "$ref_src" "$ref"
	(cd "$ref" && npm ci --no-audit --no-fund --loglevel=error)
fi

exec node bench/bench.mjs --server build-bench/switchboard \
	--loadgen build-bench/bench/sb-loadgen --reference "$ref/server.js" "$@"
