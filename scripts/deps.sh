#!/usr/bin/env bash
# Installs what switchboard needs from Debian 12 and is not there yet.
#   scripts/deps.sh          build and run dependencies
#   scripts/deps.sh --test   also what the test suite needs (Node.js, npm,
#                            nginx, openssl, Chromium, clang and libFuzzer,
#                            Redis, coturn)
# Runs apt-get as root, or through sudo for another user.  Installs nothing
# when everything is present.
set -euo pipefail

pkgs=(build-essential cmake pkg-config libwebsockets-dev libwebsockets-evlib-uv
      libjson-c-dev libuv1-dev libssl-dev libhiredis-dev)
if [ "${1:-}" = "--test" ]; then
	pkgs+=(curl)
	# nginx.test.mjs puts Debian's nginx in front of the server, with a
	# certificate made by the openssl command line.  Only the binary is
	# used; the test runs its own instance on a loopback port.
	pkgs+=(nginx openssl)
	# browser.test.mjs drives Debian's Chromium, headless, with the npm
	# package playwright-core (never a browser that npm downloads).
	pkgs+=(chromium)
	# The fuzz targets (tests/fuzz) are built by clang and linked with
	# its libFuzzer, ASan and UBSan runtimes, which Debian ships apart
	# from the compiler (libclang_rt.fuzzer-x86_64.a and the like).
	pkgs+=(clang libclang-rt-14-dev)
	# The cluster tests start their own Redis on a loopback port, with
	# no persistence; a system Redis is left alone.
	pkgs+=(redis-server)
	# turn.test.mjs starts Debian's coturn on a loopback port with a
	# configuration of its own, as docs/operations.md runs it.
	pkgs+=(coturn)
	# The suite's clients run on Node.js 20 or newer; one installed some
	# other way is used as it is.  Debian 12's is 18: scripts/test.sh then
	# fetches Node.js 20 from the npm registry for the tests.
	command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
	command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Debian starts coturn as a system service as soon as it is installed, on
# every address and with its stock configuration, which asks no
# credentials.  The tests run their own; a coturn installed here only for
# them is stopped and kept from starting at boot.
if [[ " ${missing[*]} " == *" coturn "* ]] && [ -d /run/systemd/system ]; then
	"${sudo[@]}" systemctl disable --now coturn.service >/dev/null 2>&1 || true
fi
