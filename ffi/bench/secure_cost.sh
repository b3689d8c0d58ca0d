#!/usr/bin/env bash
# What hardened mode costs under LD_PRELOAD (a bench, not a test): run.sh's workloads (mbench's
# C shapes, python3 with PYTHONMALLOC=malloc, gcc compiling a generated file) under arenagc in
# its default mode and with ARENAGC_SECURE=1 (the same library), against mimalloc as Debian
# ships it and built with its own checks (MI_SECURE=3, ffi/bench/mimalloc_secure.sh: the
# anchor the hardening issue names), interleaved in one run. Prints a markdown table of medians
# and the ratios hardened / default for both.
#
#   bash ffi/bench/secure_cost.sh                  # RUNS=5
#   RUNS=9 WORKLOADS="python3 alloc_heavy.py,gcc -O1 big.c" bash ffi/bench/secure_cost.sh
#   MI_SECURE=4 bash ffi/bench/secure_cost.sh      # mimalloc's level 4 (adds a double-free scan)
#
# Installs Debian's libmimalloc2.0 and libjemalloc2 with apt-get when they are missing.
set -euo pipefail
. "$(dirname "$0")/common.sh"
need_debian_libs
build_arenagc
make_work
level="${MI_SECURE:-3}"
bash "$here/mimalloc_secure.sh" "$work/libmimalloc-secure.so" "$level"
allocs=("arenagc=$ARENAGC_MALLOC" "arenagc-secure=$ARENAGC_MALLOC|ARENAGC_SECURE=1"
    "mimalloc=$mimalloc" "mimalloc-secure$level=$work/libmimalloc-secure.so")
ratios="arenagc-secure/arenagc mimalloc-secure$level/mimalloc arenagc-secure/mimalloc-secure$level"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg); RUNS=${RUNS:-5}" >&2
RATIOS="$ratios" python3 "$here/bench.py" "$work" "${allocs[@]}"
