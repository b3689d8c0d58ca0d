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
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
libdir="/usr/lib/$(gcc -print-multiarch)"
jemalloc="$libdir/libjemalloc.so.2"
if [ ! -e "$jemalloc" ]; then
    sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo"
    $sudo apt-get update && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y libjemalloc2
fi
target="${CARGO_TARGET_DIR:-$root/target}"
if [ -z "${ARENAGC_MALLOC:-}" ]; then
    (cd "$root" && cargo build --release -p arenagc-malloc)
    ARENAGC_MALLOC="$target/release/libarenagc_malloc.so"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gcc -O2 -fno-builtin -pthread -o "$work/mbench" "$here/mbench.c"
python3 "$here/gen_c.py" "$work/big.c" 500
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
