#!/usr/bin/env bash
# What tracing costs under LD_PRELOAD (a bench, not a test): the same workloads as run.sh, with
# the malloc replacement untraced, sampled at jemalloc's default mean (ARENAGC_TRACE_SAMPLE=
# 524288, 16 frames) and traced exactly with one frame (ARENAGC_TRACE=1), against jemalloc
# without and with its heap profiler (MALLOC_CONF=prof:true, its default 512 KiB sample),
# interleaved in one run. Reports go to a scratch directory (their writing at exit is counted:
# it is part of what a user pays). Prints a markdown table of medians and ratios.
#
#   bash ffi/bench/trace_cost.sh                 # RUNS=5
#   RUNS=9 WORKLOADS="python3 alloc_heavy.py,gcc -O1 big.c" bash ffi/bench/trace_cost.sh
#   EXACT=0 bash ffi/bench/trace_cost.sh         # leave out exact mode (slow)
set -euo pipefail
. "$(dirname "$0")/common.sh"
need_debian_libs
build_arenagc
make_work
mkdir -p "$work/reports"
out="ARENAGC_TRACE_FILE=$work/reports/t.%p"
allocs=("arenagc=$ARENAGC_MALLOC"
    "arenagc-sampled=$ARENAGC_MALLOC|ARENAGC_TRACE_SAMPLE=524288|$out")
ratios="arenagc-sampled/arenagc"
if [ "${EXACT:-1}" != 0 ]; then
    allocs+=("arenagc-exact1=$ARENAGC_MALLOC|ARENAGC_TRACE=1|$out")
    ratios="$ratios arenagc-exact1/arenagc"
fi
allocs+=("jemalloc=$jemalloc" "jemalloc-prof=$jemalloc|MALLOC_CONF=prof:true")
ratios="$ratios jemalloc-prof/jemalloc arenagc-sampled/jemalloc-prof"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg); RUNS=${RUNS:-5}" >&2
RATIOS="$ratios" python3 "$here/bench.py" "$work" "${allocs[@]}"
