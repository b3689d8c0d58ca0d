# The setup the preload benches share (sourced by run.sh, trace_cost.sh, secure_cost.sh and
# threads.sh; not run on its own). After sourcing: $here (ffi/bench), $root, $target, $libdir,
# $mimalloc and $jemalloc (Debian's libraries), and these functions.

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
libdir="/usr/lib/$(gcc -print-multiarch)"
mimalloc="$libdir/libmimalloc.so.2"
jemalloc="$libdir/libjemalloc.so.2"

# need_debian_libs: install Debian's mimalloc and jemalloc with apt-get when either is missing.
need_debian_libs() {
    if [ ! -e "$mimalloc" ] || [ ! -e "$jemalloc" ]; then
        local sudo=""
        if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
        $sudo apt-get update
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y libmimalloc2.0 libjemalloc2
    fi
}

# build_arenagc: set ARENAGC_MALLOC to the release preload library, building it unless the
# environment names one.
build_arenagc() {
    if [ -z "${ARENAGC_MALLOC:-}" ]; then
        (cd "$root" && cargo build --release -p arenagc-malloc)
        ARENAGC_MALLOC="$target/release/libarenagc_malloc.so"
    fi
}

# make_work: a scratch directory $work (removed at exit) holding bench.py's programs: mbench
# and the generated C file gcc compiles.
make_work() {
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    gcc -O2 -fno-builtin -pthread -o "$work/mbench" "$here/mbench.c"
    python3 "$here/gen_c.py" "$work/big.c" 500
}
