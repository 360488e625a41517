#!/usr/bin/env bash
# Checks that a built executable carries the hardening the top-level
# CMakeLists.txt asks for in its optimized build types: a position-
# independent executable, full RELRO (a GNU_RELRO segment and immediate
# binding), and the stack protector or _FORTIFY_SOURCE (a call to
# __stack_chk_fail or to one of glibc's checked *_chk functions).
#   tests/build/check_hardening.sh BINARY
# Prints what it found; exits non-zero when anything is missing.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 BINARY" >&2
	exit 2
fi
bin=$1
command -v readelf >/dev/null || { echo "readelf not found (binutils)" >&2; exit 2; }

failed=0
check() {
	local what=$1 ok=$2
	if [ "$ok" = yes ]; then
		echo "ok: $what"
	else
		echo "MISSING: $what"
		failed=1
	fi
}
has() {
	if grep -Eq "$1"; then echo yes; else echo no; fi
}

check "PIE (ELF type DYN)" "$(readelf -hW "$bin" | has '^ *Type: *DYN')"
check "GNU_RELRO segment" "$(readelf -lW "$bin" | has 'GNU_RELRO')"
# -z now sets DT_FLAGS BIND_NOW, or DT_FLAGS_1 NOW, or both
check "immediate binding (BIND_NOW)" \
	"$(readelf -dW "$bin" | has '\(BIND_NOW\)|\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW')"
check "stack protector or fortify (__stack_chk_fail, *_chk)" \
	"$(readelf --dyn-syms -W "$bin" | has ' (__stack_chk_fail|__[a-z_]+_chk)(@|$)')"
exit $failed
