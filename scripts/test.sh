#!/usr/bin/env bash
# Installs what is missing, then builds and runs the whole test suite three
# times: a Release build, under ThreadSanitizer, and under AddressSanitizer
# with UndefinedBehaviorSanitizer; then builds the fuzz targets with clang
# and runs each for a bounded time (tests/fuzz/README.md).  Exits non-zero
# if anything fails.
#   scripts/test.sh              all four
#   scripts/test.sh release      one or more of: release tsan asan fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

scripts/deps.sh --test

# The black-box tests need Node.js 20 or newer (playwright-core does);
# Debian 12's own nodejs is 18.  With an older one, fetch Node.js 20 once
# from the npm registry (the node-linux-<arch> package holds the official
# binary) into .tools/node, and put it first on the PATH.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
	tools="$top/.tools/node"
	if [ ! -x "$tools/bin/node" ]; then
		case "$(uname -m)" in
		x86_64) arch=x64 ;;
		aarch64) arch=arm64 ;;
		*) echo "Node.js $node_major is too old for the tests; install Node.js 20 or newer" >&2; exit 1 ;;
		esac
		echo "Node.js ${node_major} is too old for the tests: fetching Node.js 20 into $tools" >&2
		fetch=$(mktemp -d)
		(cd "$fetch" && npm pack --silent "node-linux-$arch@20" >/dev/null && tar xzf node-linux-*.tgz)
		mkdir -p "$tools"
		cp -r "$fetch/package/bin" "$tools/"
		rm -rf "$fetch"
	fi
	export PATH="$tools/bin:$PATH"
fi
echo "tests run on Node.js $(node --version)"

# playwright-core never downloads a browser itself; say so all the same
(cd tests/blackbox && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

builds=("$@")
[ ${#builds[@]} -eq 0 ] && builds=(release tsan asan fuzz)

# Sanitizers report to stderr and make the process fail; the black-box
# harness collects the server's stderr and fails the test on any report.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="detect_leaks=1 abort_on_error=1 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1 ${UBSAN_OPTIONS:-}"

status=0
for b in "${builds[@]}"; do
	# fuzz: clang, the fuzz targets only (tests/fuzz), and only their tests
	cc=() target=() label=()
	case "$b" in
	release) type=Release; scale=1 ;;
	tsan) type=TSan; scale=4 ;;
	asan) type=ASan; scale=3 ;;
	fuzz) type=RelWithDebInfo; scale=1; cc=(-DCMAKE_C_COMPILER=clang -DSB_FUZZ=ON)
	      target=(--target fuzz_all); label=(-L fuzz) ;;
	*) echo "unknown build '$b' (release, tsan, asan or fuzz)" >&2; exit 2 ;;
	esac
	dir="$top/build-$b"
	echo "=== $b: building in $dir"
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=$type -DSB_WERROR=ON "${cc[@]}" >/dev/null
	cmake --build "$dir" -j"$(nproc)" "${target[@]}" >/dev/null
	echo "=== $b: testing"
	if ! (cd "$dir" && SB_TEST_SCALE=$scale ctest --output-on-failure --timeout 600 -j2 "${label[@]}"); then
		status=1
		echo "=== $b: FAILED"
	fi
done
exit $status
