#!/usr/bin/env bash
# Instruction counts per operation, base build against new build, with valgrind's callgrind:
# unlike a time, a count does not move with the load of a shared machine, so a change of 1% in
# a fast path shows. (Instructions are not cycles: a count says what the code does, the timed
# benches what it costs; quote both.)
#
#   BASE=<git ref> bash benches/icount/run.sh                 # new = the working tree
#   BASE=<ref> NEW=<ref> WORKLOADS="hot_pair_16 batch_1000x64" bash benches/icount/run.sh
#   FEATURES=secure BASE=<ref> bash benches/icount/run.sh   # both sides built with that feature
#
# Each side is a small crate (probe.rs here) built in release mode against that side's source
# (`git archive` of the ref, or the working tree), run under callgrind once with N operations
# and once with 0: (count(N) - count(0)) / N is the count per operation, startup excluded. The
# collector's shapes (gc_collect_garbage, gc_full_collect) subtract a run of their setup instead,
# and divide by the objects collected or scanned (base_of, per_of below).
# Output: a Markdown table on stdout; work files under target/icount/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
: "${BASE:?set BASE=<git ref>}"
NEW="${NEW:-}"
WORKLOADS="${WORKLOADS:-hot_pair_16 hot_pair_64 hot_pair_256 hot_pair_1024 c_pair_48 batch_1000x64 random_replace c_mixed gc_new_clone_drop gc_collect_cycles gc_collect_garbage gc_full_collect}"
work="$root/target/icount"
mkdir -p "$work"
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }

# side NAME REF: the source of that side under $work/NAME-src (REF empty: the working tree).
source_of() {
    local name="$1" ref="$2" dir="$work/$1-src"
    if [ -z "$ref" ]; then
        echo "$root"
        return
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    git -C "$root" archive "$ref" | tar -x -C "$dir"
    echo "$dir"
}

# probe NAME SRC: build the probe against SRC (with $FEATURES); prints the executable's path.
# shellcheck source=probe.sh
source "$here/probe.sh"
probe() {
    build_probe "$1" "$2" "${FEATURES:-}"
}

# count EXE WORKLOAD N: instructions of one run. ARENAGC_VALGRIND=pools: under valgrind the
# library would otherwise serve every block from the system allocator (src/alloc/valgrind.rs),
# and the count would be valgrind's malloc. EXTRA_ENV (e.g. ARENAGC_SECURE=1) is passed on.
count() {
    env ARENAGC_VALGRIND=pools ${EXTRA_ENV:-} valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$2" "$3" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

n_of() {
    case "$1" in
    batch_1000x64) echo 200 ;;
    gc_collect_cycles) echo 100000 ;;
    gc_collect_garbage | gc_full_collect) echo 200000 ;;
    random_replace | c_mixed) echo 200000 ;;
    *) echo 1000000 ;;
    esac
}

# base_of WORKLOAD N: the run subtracted from WORKLOAD's (default: the same workload with 0).
# The collector's shapes subtract their setup, so the count is the collection alone.
base_of() {
    case "$1" in
    gc_collect_garbage) echo "gc_make_garbage $2" ;;
    gc_full_collect) echo "gc_full_setup $2" ;;
    *) echo "$1 0" ;;
    esac
}

# per_of WORKLOAD N: what the difference is divided by: objects collected (2 per cycle), live
# objects times the 3 repeated full collections (probe.rs FULL_REPEAT), else N.
per_of() {
    case "$1" in
    gc_collect_garbage) echo $((2 * $2)) ;;
    gc_full_collect) echo $((3 * 2 * $2)) ;;
    *) echo "$2" ;;
    esac
}

base_src="$(source_of base "$BASE")"
new_src="$(source_of new "$NEW")"
base_exe="$(probe base "$base_src")"
new_exe="$(probe new "$new_src")"
echo "## Instructions per operation (callgrind), base $(git -C "$root" rev-parse --short=12 "$BASE") vs new ${NEW:-working tree}"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); \`BASE=$BASE${NEW:+ NEW=$NEW} bash benches/icount/run.sh\`; per operation = (count(N) - count(base)) / per (see base_of, per_of)."
echo
echo "| workload | N | base | new | new/base |"
echo "|---|---|---|---|---|"
for w in $WORKLOADS; do
    n="$(n_of "$w")"
    read -r bw bn <<<"$(base_of "$w" "$n")"
    per="$(per_of "$w" "$n")"
    b=$(($(count "$base_exe" "$w" "$n") - $(count "$base_exe" "$bw" "$bn")))
    c=$(($(count "$new_exe" "$w" "$n") - $(count "$new_exe" "$bw" "$bn")))
    python3 -c "
b, c = $b / $per, $c / $per
print(f'| $w | $n | {b:.2f} | {c:.2f} | {c / b:.3f} |')"
done
