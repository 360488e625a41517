#!/usr/bin/env bash
# Installs what is missing, builds switchboard (Release) and runs it on its
# defaults (port 8080, all interfaces).  Arguments go to the server:
#   scripts/run.sh --port 9000 --workers 4
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target switchboard >/dev/null
exec build/switchboard "$@"
