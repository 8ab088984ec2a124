#!/bin/sh
# build-front.sh OUT: builds the isula front (cmd/isula/isula.c) into the file OUT: a static C
# binary (docs/ARCHITECTURE.md, "Front and full client"). CC picks the compiler (default cc);
# the Makefile, the benchmarks and the tests build it with this script.
set -eu
[ $# -eq 1 ] || { echo "usage: build-front.sh OUT" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)/cmd/isula/isula.c
exec ${CC:-cc} -std=gnu11 -O2 -static -s -Wall -Wextra -Wshadow -Wformat=2 \
	-D_FORTIFY_SOURCE=2 -fstack-protector-strong -o "$1" "$src"
