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

. "$(dirname "$0")/common.sh"
need_debian_libs
build_arenagc
# The same library with the large-pools geometry (16 KiB pools, 1 MiB arenas), in a target
# directory of its own so the two builds do not undo each other.
if [ -z "${ARENAGC_MALLOC_LARGE:-}" ]; then
    (cd "$root" && CARGO_TARGET_DIR="$target/large-pools" \
        cargo build --release -p arenagc-malloc --features large-pools)
    ARENAGC_MALLOC_LARGE="$target/large-pools/release/libarenagc_malloc.so"
fi

make_work

echo "allocators: arenagc=$ARENAGC_MALLOC arenagc-large=$ARENAGC_MALLOC_LARGE mimalloc=$mimalloc jemalloc=$jemalloc" >&2
python3 "$here/bench.py" "$work" "arenagc=$ARENAGC_MALLOC" "arenagc-large=$ARENAGC_MALLOC_LARGE" \
    "mimalloc=$mimalloc" "jemalloc=$jemalloc"
