#!/usr/bin/env bash
# Speed bench of the malloc replacement (not a test): glibc vs arenagc (both geometries) vs mimalloc
# vs jemalloc, each under LD_PRELOAD, in one interleaved run. Prints a markdown table (ffi/README.md keeps
# the last one measured).
#
#   bash ffi/bench/run.sh            # RUNS=5 by default
#   RUNS=9 bash ffi/bench/run.sh
#   ARENAGC_MALLOC=/path/libarenagc_malloc.so bash ffi/bench/run.sh   # skip the cargo build
#   (ARENAGC_MALLOC_LARGE likewise for the large-pools build)
#
# Installs Debian's libmimalloc2.0 and libjemalloc2 with apt-get when they are missing.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
multiarch="$(gcc -print-multiarch)"
libdir="/usr/lib/$multiarch"
mimalloc="$libdir/libmimalloc.so.2"
jemalloc="$libdir/libjemalloc.so.2"

if [ ! -e "$mimalloc" ] || [ ! -e "$jemalloc" ]; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y libmimalloc2.0 libjemalloc2
fi

target="${CARGO_TARGET_DIR:-$root/target}"
if [ -z "${ARENAGC_MALLOC:-}" ]; then
    (cd "$root" && cargo build --release -p arenagc-malloc)
    ARENAGC_MALLOC="$target/release/libarenagc_malloc.so"
fi
# The same library with the large-pools geometry (16 KiB pools, 1 MiB arenas), in a target
# directory of its own so the two builds do not undo each other.
if [ -z "${ARENAGC_MALLOC_LARGE:-}" ]; then
    (cd "$root" && CARGO_TARGET_DIR="$target/large-pools" \
        cargo build --release -p arenagc-malloc --features large-pools)
    ARENAGC_MALLOC_LARGE="$target/large-pools/release/libarenagc_malloc.so"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gcc -O2 -fno-builtin -pthread -o "$work/mbench" "$here/mbench.c"
python3 "$here/gen_c.py" "$work/big.c" 500

echo "allocators: arenagc=$ARENAGC_MALLOC arenagc-large=$ARENAGC_MALLOC_LARGE mimalloc=$mimalloc jemalloc=$jemalloc" >&2
python3 "$here/bench.py" "$work" "arenagc=$ARENAGC_MALLOC" "arenagc-large=$ARENAGC_MALLOC_LARGE" \
    "mimalloc=$mimalloc" "jemalloc=$jemalloc"
