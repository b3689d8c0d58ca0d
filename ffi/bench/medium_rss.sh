#!/usr/bin/env bash
# Resident memory of medium blocks under each allocator (not a test): medium_rss.c run with no
# preload (glibc), then with arenagc, mimalloc and jemalloc preloaded. Arguments go to the
# program: [N [LO HI]] (default 20000 blocks of 2049..4096 bytes). See benches/README.md.
#
#   bash ffi/bench/medium_rss.sh
#   bash ffi/bench/medium_rss.sh 50000 513 2048
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
libdir="/usr/lib/$(gcc -print-multiarch)"
if [ -z "${ARENAGC_MALLOC:-}" ]; then
    (cd "$root" && cargo build --release -q -p arenagc-malloc)
    ARENAGC_MALLOC="${CARGO_TARGET_DIR:-$root/target}/release/libarenagc_malloc.so"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gcc -O2 -Wall -o "$work/medium_rss" "$here/medium_rss.c"
for pair in "glibc=" "arenagc=$ARENAGC_MALLOC" "mimalloc=$libdir/libmimalloc.so.2" "jemalloc=$libdir/libjemalloc.so.2"; do
    name="${pair%%=*}" lib="${pair#*=}"
    if [ -n "$lib" ] && [ ! -e "$lib" ]; then
        echo "$name: $lib missing (ffi/bench/threads.sh installs it)"
        continue
    fi
    printf '%-9s ' "$name"
    LD_PRELOAD="$lib" "$work/medium_rss" "$@"
done
