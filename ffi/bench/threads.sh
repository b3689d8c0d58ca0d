#!/usr/bin/env bash
# Multi-threaded speed bench of the malloc replacement (not a test): threads.c's five shapes
# (larson, rptest, glibc-thread, alloc-test, large) at several thread counts, under glibc (no
# preload), arenagc, mimalloc and jemalloc (LD_PRELOAD), interleaved; one markdown table per
# shape. See benches/README.md, "Multi-threaded workloads".
#
#   bash ffi/bench/threads.sh                                   # ROUNDS=5, every shape, T = 1 2 4 8 16
#   ROUNDS=3 SHAPES="larson rptest" THREADS="1 4 16" bash ffi/bench/threads.sh
#   ARENAGC_MALLOC=/path/libarenagc_malloc.so bash ffi/bench/threads.sh   # skip the cargo build
#   ARENAGC_MALLOC_LARGE=/path/libarenagc_malloc.so ...   # adds a column (e.g. a large-pools build)
#   MI_SECURE=3 bash ffi/bench/threads.sh   # adds mimalloc built with its checks (MI_SECURE=3)
#
# MI_SECURE=N builds mimalloc's own source (the libmimalloc-sys crate the Rust bench vendors,
# fetched by cargo) with -DMI_SECURE=N as a preload library: mimalloc's checked build, whose
# level 3 encodes free lists and rejects invalid frees (and puts guard pages around each page),
# the nearest to arenagc's default checks; level 4 adds a double-free scan.
#
# Other knobs (read by threads.py): LARGE_THREADS (default "1"), DURATION (seconds per run of a
# fixed-time shape, default 0.3), TIMEOUT (seconds before a run counts as hung, default 60).
# A crash or hang is reported with the exact command, and the script then exits with status 1.
#
# Installs Debian's libmimalloc2.0 and libjemalloc2 with apt-get when they are missing.
set -euo pipefail

. "$(dirname "$0")/common.sh"
need_debian_libs
build_arenagc

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gcc -O2 -pthread -Wall -o "$work/threads" "$here/threads.c"

allocs=("arenagc=$ARENAGC_MALLOC")
if [ -n "${ARENAGC_MALLOC_LARGE:-}" ]; then allocs+=("arenagc-large=$ARENAGC_MALLOC_LARGE"); fi
allocs+=("mimalloc=$mimalloc" "jemalloc=$jemalloc")
if [ -n "${MI_SECURE:-}" ]; then
    bash "$here/mimalloc_secure.sh" "$work/libmimalloc-secure.so" "$MI_SECURE"
    allocs+=("mimalloc-secure$MI_SECURE=$work/libmimalloc-secure.so")
fi
echo "allocators: ${allocs[*]}" >&2
python3 "$here/threads.py" "$work/threads" "${allocs[@]}"
