#!/usr/bin/env bash
# Checks the install rules against a built tree: `cmake --install` into a
# fresh prefix, then once more staged with DESTDIR, and after each checks
# that exactly the expected files are there (no sb_core library, no test or
# bench programs), that the installed binary starts, serves and drains, that
# the systemd unit's ExecStart names the installed binary, that the unit
# and the cluster and secrets drop-ins pass systemd-analyze verify (the
# cluster one also where Redis is not installed), and that the examples and
# docs are copies of the sources.  Installs nothing outside its own temporary directory.
# Exits non-zero on any failure.
#
#   tests/install/check_install.sh BUILD_DIR SOURCE_DIR
#
# CMAKE names the cmake to use (ctest passes its own); SB_TEST_SCALE
# stretches the waits for sanitizer builds.
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
cmake=${CMAKE:-cmake}
scale=${SB_TEST_SCALE:-1}
[[ "$scale" =~ ^[1-9][0-9]*$ ]] || scale=1
# The server also reads its options from SWITCHBOARD_* variables: the
# caller's must not change what is tested here.
unset "${!SWITCHBOARD_@}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sb-install.XXXXXX")
server_pid=
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

failed=0
fail() {
	echo "FAIL $*"
	failed=$((failed + 1))
}

# The directories as configured (the test follows them rather than assuming
# the defaults, so that a build configured for a package still passes).
cache_value() {
	sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"
}
bindir=$(cache_value CMAKE_INSTALL_BINDIR)
unitdir=$(cache_value SB_SYSTEMD_UNIT_DIR)
# GNUInstallDirs leaves DOCDIR empty in the cache unless it is set, and then
# uses DATAROOTDIR/doc/PROJECT_NAME.
docdir=$(cache_value CMAKE_INSTALL_DOCDIR)
[ -n "$docdir" ] || docdir="$(cache_value CMAKE_INSTALL_DATAROOTDIR)/doc/switchboard"
datadir=$(cache_value CMAKE_INSTALL_DATADIR)
[ -n "$datadir" ] || datadir=$(cache_value CMAKE_INSTALL_DATAROOTDIR)
webfiles="index.html app.js style.css favicon.svg switchboard-client.js"
if [ -z "$bindir" ] || [ -z "$unitdir" ] || [ "$docdir" = /doc/switchboard ]; then
	echo "check_install: the install directories are not in $build/CMakeCache.txt" >&2
	exit 2
fi

# full PREFIX DIR: DIR on the target system
full() {
	case "$2" in
	/*) printf '%s\n' "$2" ;;
	*) printf '%s\n' "$1/$2" ;;
	esac
}

# wait_for SECONDS COMMAND...: poll every 0.1 s until COMMAND succeeds
wait_for() {
	local n=$(( $1 * scale * 10 ))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

listening_port() {
	sed -n 's/^switchboard listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
		"$tmp/server.out"
}
has_port() { [ -n "$(listening_port)" ] || ! kill -0 "$server_pid" 2>/dev/null; }
has_exited() { ! kill -0 "$server_pid" 2>/dev/null; }

# expect_200 PORT PATH WHAT: GET PATH on 127.0.0.1:PORT answers 200
expect_200() {
	local port=$1 path=$2 what=$3 line=
	if exec 3<>"/dev/tcp/127.0.0.1/$port"; then
		printf 'GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n' "$path" >&3
		IFS= read -r -t $((10 * scale)) line <&3 || true
		exec 3<&-
	fi
	case "$line" in
	"HTTP/1.1 200"*) ;;
	*) fail "binary: GET $path answered '${line%$'\r'}', expected 200$what" ;;
	esac
}

# check_binary BIN: it runs, listens, answers /healthz and /, exits 0 on SIGTERM
check_binary() {
	local bin=$1 port status
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
		fail "binary: $bin is missing or not executable"
		return
	fi
	if ! timeout 30 "$bin" --help >"$tmp/help.out" 2>&1; then
		fail "binary: $bin --help did not exit 0"
		cat "$tmp/help.out"
	fi
	if ! timeout 30 "$bin" --version >/dev/null 2>&1; then
		fail "binary: $bin --version did not exit 0"
	fi

	"$bin" --port 0 --bind 127.0.0.1 --workers 1 \
		>"$tmp/server.out" 2>"$tmp/server.err" &
	server_pid=$!
	wait_for 30 has_port || true
	port=$(listening_port)
	if [ -z "$port" ]; then
		fail "binary: no 'switchboard listening on 127.0.0.1:PORT' line"
		cat "$tmp/server.out" "$tmp/server.err"
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=
		return
	fi

	# Plain HTTP requests, with bash's own /dev/tcp: no client to install.
	expect_200 "$port" /healthz ""
	# The demo page, found beside the installed binary (--web-root's
	# default), not in the source tree.
	expect_200 "$port" / " (the installed demo page)"
	if ! grep -q "; web root .*/switchboard/web ($(echo $webfiles | wc -w) files)" "$tmp/server.err" ||
	   grep -q "; web root $src/web " "$tmp/server.err"; then
		fail "binary: it does not serve the installed web files:"
		grep -i "web" "$tmp/server.err" || true
	fi

	kill -TERM "$server_pid" 2>/dev/null || true
	if ! wait_for 30 has_exited; then
		fail "binary: still running 30 s after SIGTERM"
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	status=0
	wait "$server_pid" || status=$?
	server_pid=
	if [ "$status" -ne 0 ]; then
		fail "binary: exit status $status after SIGTERM, expected 0"
		tail -n 20 "$tmp/server.err"
	fi
}

# check_unit UNIT PREFIX: ExecStart names the binary installed under PREFIX,
# and the rest is the template as it is
check_unit() {
	local unit=$1 prefix=$2 want
	if [ ! -f "$unit" ]; then
		fail "unit: $unit is missing"
		return
	fi
	want="ExecStart=$(full "$prefix" "$bindir")/switchboard"
	if [ "$(grep '^ExecStart=' "$unit")" != "$want" ]; then
		fail "unit: expected exactly one line '$want', got:"
		grep '^ExecStart=' "$unit" || echo "(no ExecStart)"
	fi
	if [ "$(stat -c %a "$unit")" != 644 ]; then
		fail "unit: $unit has mode $(stat -c %a "$unit"), expected 644"
	fi
	if grep -n '@[A-Za-z_]*@' "$unit"; then
		fail "unit: placeholders left in $unit"
	fi
	sed -e "s|@CMAKE_INSTALL_FULL_BINDIR@|$(full "$prefix" "$bindir")|g" \
		-e "s|@CMAKE_INSTALL_FULL_DOCDIR@|$(full "$prefix" "$docdir")|g" \
		"$src/deploy/switchboard.service.in" >"$tmp/unit.want"
	if ! diff -u "$tmp/unit.want" "$unit"; then
		fail "unit: $unit is not the template with the paths filled in"
	fi
}

# check_install LABEL ROOT PREFIX: ROOT is where the files are (DESTDIR, or
# empty for a plain install into PREFIX)
check_install() {
	local label=$1 root=$2 prefix=$3 top f rel d
	top=${root:-$prefix}
	local bin="$root$(full "$prefix" "$bindir")/switchboard"
	local unit="$root$(full "$prefix" "$unitdir")/switchboard.service"
	local doc="$root$(full "$prefix" "$docdir")"
	local web="$root$(full "$prefix" "$datadir")/switchboard/web"

	echo "--- $label"
	# Exactly these files, nothing else.
	{
		echo "$bin"
		echo "$unit"
		echo "$doc/README.md"
		for f in "$src"/docs/*.md; do
			echo "$doc/docs/${f##*/}"
		done
		echo "$doc/examples/nginx/switchboard.conf"
		echo "$doc/examples/nginx/switchboard-cluster.conf"
		echo "$doc/examples/switchboard.service.d/redis.conf"
		echo "$doc/examples/switchboard.service.d/secrets.conf"
		echo "$doc/examples/haproxy/switchboard.cfg"
		echo "$doc/examples/default/switchboard"
		for f in $webfiles; do
			echo "$web/$f"
		done
	} | sort >"$tmp/expected"
	find "$top" \( -type f -o -type l \) | sort >"$tmp/installed"
	if ! cmp -s "$tmp/expected" "$tmp/installed"; then
		fail "$label: the installed files differ from the expected ones"
		comm -13 "$tmp/expected" "$tmp/installed" | sed 's/^/  unexpected: /'
		comm -23 "$tmp/expected" "$tmp/installed" | sed 's/^/  missing: /'
	fi

	check_binary "$bin"
	check_unit "$unit" "$prefix"

	# Examples and docs: copies of the sources, readable by everyone.
	while read -r rel d; do
		if ! cmp -s "$src/$rel" "$d"; then
			fail "$label: $d is missing or differs from $rel"
		elif [ "$(stat -c %a "$d")" != 644 ]; then
			fail "$label: $d has mode $(stat -c %a "$d"), expected 644"
		fi
	done <<-EOF
		README.md $doc/README.md
		deploy/nginx/switchboard.conf $doc/examples/nginx/switchboard.conf
		deploy/nginx/switchboard-cluster.conf $doc/examples/nginx/switchboard-cluster.conf
		deploy/switchboard.service.d/redis.conf $doc/examples/switchboard.service.d/redis.conf
		deploy/switchboard.service.d/secrets.conf $doc/examples/switchboard.service.d/secrets.conf
		deploy/haproxy/switchboard.cfg $doc/examples/haproxy/switchboard.cfg
		deploy/default/switchboard $doc/examples/default/switchboard
		$(for f in "$src"/docs/*.md; do echo "docs/${f##*/} $doc/docs/${f##*/}"; done)
		$(for f in $webfiles; do echo "web/$f $web/$f"; done)
	EOF
}

# The environment example must name every option the server has: a new
# option without its variable there fails here.
check_env_example() {
	local bin=$1 example=$2 opt var
	for opt in $("$bin" --help 2>&1 | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		case "$opt" in --help | --version) continue ;; esac
		var=SWITCHBOARD_$(printf '%s' "${opt#--}" | tr 'a-z-' 'A-Z_')
		if ! grep -q "^#$var=" "$example"; then
			fail "examples: $example has no '#$var=' line for $opt"
		fi
	done
	if grep -n '^[^#[:space:]]' "$example"; then
		fail "examples: $example sets something; every line should be commented out"
	fi
}

# check_dropin UNIT DROPIN: systemd-analyze verify of the unit with the
# cluster drop-in beside it, as /etc/systemd/system would hold them, once
# with the host's units and once with every unit of the host but Redis's:
# the drop-in must not stop switchboard from starting where Redis is not
# installed.  A copy with Requires= added must fail there, which shows that
# the drop-in is read and that Redis's unit is hidden.
check_dropin() {
	local unit=$1 dropin=$2 d f units="$tmp/units"
	d="$tmp/dropin-check"
	mkdir -p "$d/switchboard.service.d" "$units"
	cp "$unit" "$d/switchboard.service"
	cp "$dropin" "$d/switchboard.service.d/redis.conf"
	for f in /lib/systemd/system/* /etc/systemd/system/*; do
		case "${f##*/}" in redis-server*) ;; *) ln -sf "$f" "$units/" ;; esac
	done
	verify() {
		if ! env "$@" systemd-analyze verify "$d/switchboard.service" >"$tmp/verify.log" 2>&1; then
			return 1
		fi
		! grep -F "$d/" "$tmp/verify.log"
	}
	if ! verify; then
		fail "drop-in: systemd-analyze verify failed with $dropin"
		cat "$tmp/verify.log"
	elif ! verify SYSTEMD_UNIT_PATH="$units"; then
		fail "drop-in: systemd-analyze verify failed with $dropin where redis-server.service is not installed"
		cat "$tmp/verify.log"
	else
		echo 'Requires=redis-server.service' >>"$d/switchboard.service.d/redis.conf"
		if verify SYSTEMD_UNIT_PATH="$units"; then
			fail "drop-in: a Requires= on the missing redis-server.service passed: the check proves nothing"
		else
			echo "systemd-analyze verify with the drop-in, with and without Redis: ok"
		fi
	fi
	rm -rf "$d" "$units"
}

# check_secrets_dropin UNIT DROPIN: systemd-analyze verify of the unit with
# the secrets drop-in beside it: no word about the drop-in (an unknown key
# or a bad credential name would be one).  A copy with a misspelt key must
# draw one, which shows that the drop-in is read.
check_secrets_dropin() {
	local unit=$1 dropin=$2 d="$tmp/secrets-check"
	mkdir -p "$d/switchboard.service.d"
	cp "$unit" "$d/switchboard.service"
	cp "$dropin" "$d/switchboard.service.d/secrets.conf"
	systemd-analyze verify "$d/switchboard.service" >"$tmp/verify.log" 2>&1 || true
	if grep -F "$d/switchboard.service.d/" "$tmp/verify.log"; then
		fail "drop-in: systemd-analyze verify warned about $dropin"
	else
		echo 'LoadCredentiall=x.key:/etc/x.key' >>"$d/switchboard.service.d/secrets.conf"
		systemd-analyze verify "$d/switchboard.service" >"$tmp/verify.log" 2>&1 || true
		if ! grep -qF "$d/switchboard.service.d/secrets.conf" "$tmp/verify.log"; then
			fail "drop-in: a misspelt key in the secrets drop-in passed: the check proves nothing"
		else
			echo "systemd-analyze verify with the secrets drop-in: ok"
		fi
	fi
	rm -rf "$d"
}

# 1. A plain install into a fresh prefix.  With a directory configured as
# absolute (a packager's /lib/systemd/system) that would write outside the
# temporary directory, so then it is staged as well.
prefix="$tmp/prefix"
root=
for d in "$bindir" "$docdir" "$unitdir"; do
	case "$d" in /*) root="$tmp/prefix-root" ;; esac
done
if ! DESTDIR=$root "$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"
	echo "FAIL cmake --install $build --prefix $prefix"
	exit 1
fi
check_install "cmake --install --prefix $prefix" "$root" "$prefix"
check_env_example "$root$(full "$prefix" "$bindir")/switchboard" \
	"$root$(full "$prefix" "$docdir")/examples/default/switchboard"

# systemd's own check of the unit, where it is available (not needed: CI
# containers may not have systemd).  It also checks that ExecStart exists,
# which it does only in an unstaged install.
unit="$root$(full "$prefix" "$unitdir")/switchboard.service"
if [ -z "$root" ] && command -v systemd-analyze >/dev/null; then
	if ! systemd-analyze verify "$unit" >"$tmp/verify.log" 2>&1; then
		fail "unit: systemd-analyze verify failed"
		cat "$tmp/verify.log"
	elif grep -F "$unit:" "$tmp/verify.log"; then
		fail "unit: systemd-analyze verify warned about it"
	else
		echo "systemd-analyze verify: ok"
	fi
	check_dropin "$unit" "$(full "$prefix" "$docdir")/examples/switchboard.service.d/redis.conf"
	check_secrets_dropin "$unit" "$(full "$prefix" "$docdir")/examples/switchboard.service.d/secrets.conf"
fi

# 2. Staged with DESTDIR, as a package build does: the files land under the
# stage, the paths inside them are those of the target system.
stage="$tmp/stage"
if ! DESTDIR=$stage "$cmake" --install "$build" --prefix /usr >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"
	echo "FAIL DESTDIR=$stage cmake --install $build --prefix /usr"
	exit 1
fi
check_install "DESTDIR=$stage cmake --install --prefix /usr" "$stage" /usr

if [ "$failed" -ne 0 ]; then
	echo "check_install: $failed failure(s)"
	exit 1
fi
echo "check_install: ok"
