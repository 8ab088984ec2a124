#!/bin/sh
# build-shim-lite.sh OUT: builds the light shim (cmd/isulad-shim-lite/lite.c) into the file OUT,
# a static C binary. It must sit beside isulad-shim, which it execs (internal/shim.Spares uses
# it for detached starts when it is there). CC picks the compiler (default cc).
set -eu
[ $# -eq 1 ] || { echo "usage: build-shim-lite.sh OUT" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)/cmd/isulad-shim-lite/lite.c
exec ${CC:-cc} -std=gnu11 -O2 -static -s -Wall -Wextra -Wshadow -Wformat=2 \
	-D_FORTIFY_SOURCE=2 -fstack-protector-strong ${LITE_CFLAGS:-} -o "$1" "$src"
