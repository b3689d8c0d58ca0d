#!/usr/bin/env bash
# Which heap misuse each allocator catches (not a test: a table for the README). faults.c commits
# one fault per run; each runs under glibc, mimalloc and jemalloc (Debian's, LD_PRELOAD), and
# arenagc's preload library in its three modes (default, ARENAGC_SECURE=1, ARENAGC_DEBUG=1), for
# a small (48 B), a medium (1000 B) and a large (100000 B) block. Cell: "abort" (SIGABRT, a
# message), "segv" (killed at a guard or by a wild access: caught without a message), "-" (ran
# on: not caught), "stack!" (malloc handed out the stack address the poisoning wrote).
#
#   bash ffi/bench/faults.sh            # prints a Markdown table
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
libdir="/usr/lib/$(gcc -print-multiarch)"
mimalloc="$libdir/libmimalloc.so.2"
jemalloc="$libdir/libjemalloc.so.2"
if [ ! -e "$mimalloc" ] || [ ! -e "$jemalloc" ]; then
    sudo=""
    [ "$(id -u)" != 0 ] && sudo="sudo"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        libmimalloc2.0 libjemalloc2; } >/dev/null 2>&1 || true
fi
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p arenagc-malloc)
arenagc="$target/release/libarenagc_malloc.so"
work="$target/faults"
mkdir -p "$work"
gcc -O1 -o "$work/faults" "$here/faults.c"

cases="double_free double_free_aba double_free_later free_interior free_stack free_static uaf_link_poison uaf_write_middle overflow_then_free overflow_8_then_free underflow_then_free realloc_freed"
declare -a names=(glibc mimalloc jemalloc "arenagc" "arenagc secure" "arenagc debug")
run() { # config case size
    local env=(env -u ARENAGC_DEBUG -u ARENAGC_SECURE)
    case "$1" in
    glibc) ;;
    mimalloc) [ -e "$mimalloc" ] || { echo "n/a"; return; }; env+=(LD_PRELOAD="$mimalloc") ;;
    jemalloc) [ -e "$jemalloc" ] || { echo "n/a"; return; }; env+=(LD_PRELOAD="$jemalloc") ;;
    "arenagc") env+=(LD_PRELOAD="$arenagc") ;;
    "arenagc secure") env+=(LD_PRELOAD="$arenagc" ARENAGC_SECURE=1) ;;
    "arenagc debug") env+=(LD_PRELOAD="$arenagc" ARENAGC_DEBUG=1) ;;
    esac
    local rc=0
    "${env[@]}" "$work/faults" "$2" "$3" >/dev/null 2>"$work/err" || rc=$?
    case "$rc" in
    0) echo "-" ;;
    4) echo "stack!" ;;
    134) echo "abort" ;;
    139) echo "segv" ;;
    *) echo "rc $rc" ;;
    esac
}
printf '| fault | size |'
for n in "${names[@]}"; do printf ' %s |' "$n"; done
printf '\n|---|---|'
for _ in "${names[@]}"; do printf -- '---|'; done
printf '\n'
declare -A caught
for c in $cases; do
    for s in 48 1000 100000; do
        printf '| %s | %s |' "$c" "$s"
        for n in "${names[@]}"; do
            r=$(run "$n" "$c" "$s")
            printf ' %s |' "$r"
            case "$r" in abort | segv) caught[$n]=$((${caught[$n]:-0} + 1)) ;; esac
        done
        printf '\n'
    done
done
total=$(($(wc -w <<<"$cases") * 3))
printf '| **caught** (of %d) | |' "$total"
for n in "${names[@]}"; do printf ' **%s** |' "${caught[$n]:-0}"; done
printf '\n'
