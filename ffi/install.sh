#!/usr/bin/env bash
# Build and install arenagc's C library under a prefix, as a C library installs:
#
#   PREFIX/include/arenagc.h
#   LIBDIR/libarenagc.so.X.Y.Z          the shared library (SONAME libarenagc.so.X), stripped
#   LIBDIR/libarenagc.so.X -> .so.X.Y.Z and libarenagc.so -> .so.X
#   LIBDIR/libarenagc.a                  the static library, stripped of debug info
#   LIBDIR/libarenagc_malloc.so          the malloc replacement, for LD_PRELOAD
#   LIBDIR/.debug/*.debug                debug info kept apart (builds that have it: --profile profiling)
#   LIBDIR/pkgconfig/arenagc.pc          pkg-config --cflags --libs arenagc
#   LIBDIR/cmake/arenagc/arenagcConfig.cmake (+ ConfigVersion)   find_package(arenagc)
#   PREFIX/share/doc/arenagc/            README.md, LICENSE-MIT, LICENSE-APACHE
#   PREFIX/share/arenagc/install-manifest.txt   what --uninstall removes
#
# Programs linked through pkg-config or the CMake target run without LD_LIBRARY_PATH: the
# .pc file's Libs carry an RPATH to LIBDIR unless LIBDIR is one the dynamic loader always
# searches (/usr/lib, /lib, their multiarch and 64 directories; --no-rpath to leave it out),
# and CMake gives programs in its build tree an RPATH to every imported library's directory.
#
# Usage: bash ffi/install.sh [--prefix DIR] [--libdir DIR] [--destdir DIR] [--profile NAME]
#                            [--features LIST] [--target-dir DIR] [--no-build] [--no-rpath]
#        bash ffi/install.sh --uninstall [--prefix DIR] [--destdir DIR]
#
#   --prefix     where to install (default /usr/local; or $PREFIX)
#   --libdir     the library directory, absolute or relative to the prefix (default lib)
#   --destdir    staging directory for packagers: files go to DESTDIR/PREFIX/..., the paths
#                written into the .pc and CMake files are PREFIX's (or $DESTDIR)
#   --profile    cargo profile to build (default release: no debug info; profiling: the same
#                code with debug info, which is installed apart in LIBDIR/.debug, where gdb
#                finds it through each library's .gnu_debuglink)
#   --features   cargo features of both libraries (large-pools)
#   --target-dir cargo target directory (default $CARGO_TARGET_DIR, else target/)
#   --no-build   install what the target directory holds
#
# Not cargo-c: see ffi/README.md, "Installing" (cargo-c would build cargo itself here, ~10
# minutes and ~250 crates on 2 cores, and writes no CMake package; this script is the steps).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

prefix="${PREFIX:-/usr/local}"
libdir="${LIBDIR:-}"
destdir="${DESTDIR:-}"
profile=release
features=""
target_dir="${CARGO_TARGET_DIR:-$root/target}"
build=1
rpath=auto
uninstall=0

die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#*=}"; shift ;;
    --libdir) libdir="$2"; shift 2 ;;
    --libdir=*) libdir="${1#*=}"; shift ;;
    --destdir) destdir="$2"; shift 2 ;;
    --destdir=*) destdir="${1#*=}"; shift ;;
    --profile) profile="$2"; shift 2 ;;
    --profile=*) profile="${1#*=}"; shift ;;
    --features) features="$2"; shift 2 ;;
    --features=*) features="${1#*=}"; shift ;;
    --target-dir) target_dir="$2"; shift 2 ;;
    --target-dir=*) target_dir="${1#*=}"; shift ;;
    --no-build) build=0; shift ;;
    --no-rpath) rpath=no; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (--help)" ;;
    esac
done

case "$prefix" in /*) ;; *) die "--prefix must be an absolute path, not '$prefix'" ;; esac
prefix="${prefix%/}" # "/" becomes "": the paths below are "$prefix/..."
libdir="${libdir:-lib}"
case "$libdir" in /*) ;; *) libdir="$prefix/$libdir" ;; esac
libdir="${libdir%/}"
includedir="$prefix/include"
docdir="$prefix/share/doc/arenagc"
manifest="$prefix/share/arenagc/install-manifest.txt"

if [ "$uninstall" = 1 ]; then
    [ -f "$destdir$manifest" ] || die "nothing to uninstall: no $destdir$manifest"
    while IFS= read -r f; do
        rm -f "$destdir$f"
    done <"$destdir$manifest"
    rm -f "$destdir$manifest"
    for d in "$libdir/cmake/arenagc" "$libdir/.debug" "$libdir/pkgconfig" "$libdir/cmake" \
        "$docdir" "$prefix/share/arenagc"; do
        rmdir "$destdir$d" 2>/dev/null || true
    done
    echo "arenagc uninstalled from $destdir$prefix"
    exit 0
fi

# The C library's version is arenagc-ffi's; the header must say the same.
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/Cargo.toml" | head -n 1)"
major="${version%%.*}"
header_version="$(sed -n 's/^#define AGC_VERSION_STRING "\(.*\)"$/\1/p' "$root/include/arenagc.h")"
[ "$version" = "$header_version" ] ||
    die "ffi/Cargo.toml says $version, include/arenagc.h says $header_version"

case "$profile" in
release) out="$target_dir/release" ;;
dev) out="$target_dir/debug" ;;
*) out="$target_dir/$profile" ;;
esac

if [ "$build" = 1 ]; then
    args=(build --profile "$profile" -p arenagc-ffi -p arenagc-malloc)
    [ -z "$features" ] || args+=(--features "$features")
    echo "install.sh: ${CARGO:-cargo} ${args[*]} (target directory $target_dir)"
    (cd "$root" && CARGO_TARGET_DIR="$target_dir" "${CARGO:-cargo}" "${args[@]}")
fi
for f in libarenagc.so libarenagc.a libarenagc_malloc.so; do
    [ -f "$out/$f" ] || die "$out/$f is missing (build first, or drop --no-build)"
done

installed=()
put() { # put MODE SRC DEST: install a file, recorded in the manifest
    install -D -m "$1" "$2" "$destdir$3"
    installed+=("$3")
}
link() { # link TARGET NAME: a relative symlink NAME -> TARGET (same directory)
    ln -sfn "$1" "$destdir$2"
    installed+=("$2")
}
has_debug_info() { readelf -S "$1" 2>/dev/null | grep -q '\.debug_info'; }
# install_lib MODE SRC DEST: strip; when SRC has debug info, keep it in LIBDIR/.debug/NAME.debug
# and point the library at it (.gnu_debuglink).
install_lib() {
    local mode="$1" src="$2" dest="$3" name tmp
    name="$(basename "$dest")"
    tmp="$(mktemp -d)"
    cp "$src" "$tmp/$name"
    if has_debug_info "$tmp/$name"; then
        objcopy --only-keep-debug "$tmp/$name" "$tmp/$name.debug"
        strip --strip-debug "$tmp/$name"
        (cd "$tmp" && objcopy --add-gnu-debuglink="$name.debug" "$name")
        put 644 "$tmp/$name.debug" "$libdir/.debug/$name.debug"
    else
        strip --strip-debug "$tmp/$name"
    fi
    put "$mode" "$tmp/$name" "$dest"
    rm -rf "$tmp"
}

install_lib 755 "$out/libarenagc.so" "$libdir/libarenagc.so.$version"
link "libarenagc.so.$version" "$libdir/libarenagc.so.$major"
link "libarenagc.so.$major" "$libdir/libarenagc.so"
# The static library holds the Rust standard library's objects with their debug info (most
# of its 25 MB); nobody debugs through them from a C program, so they are dropped.
tmp="$(mktemp -d)"
cp "$out/libarenagc.a" "$tmp/libarenagc.a"
strip --strip-debug "$tmp/libarenagc.a"
put 644 "$tmp/libarenagc.a" "$libdir/libarenagc.a"
rm -rf "$tmp"
install_lib 755 "$out/libarenagc_malloc.so" "$libdir/libarenagc_malloc.so"
put 644 "$root/include/arenagc.h" "$includedir/arenagc.h"
for f in README.md LICENSE-MIT LICENSE-APACHE; do
    put 644 "$root/$f" "$docdir/$f"
done

# An RPATH in the .pc file, unless the loader searches LIBDIR anyway.
triplet="$(gcc -print-multiarch 2>/dev/null || true)"
case "$libdir" in
/lib | /usr/lib | /lib64 | /usr/lib64) rpath=no ;;
*) if [ -n "$triplet" ] && { [ "$libdir" = "/lib/$triplet" ] || [ "$libdir" = "/usr/lib/$triplet" ]; }; then
       rpath=no
   fi ;;
esac
libs_rpath=""
[ "$rpath" = no ] || libs_rpath=' -Wl,-rpath,${libdir}'
# Paths in the .pc file relative to ${prefix} where they can be (pkg-config --define-prefix).
pc_libdir="$libdir"
case "$libdir" in "$prefix"/*) pc_libdir="\${prefix}/${libdir#"$prefix"/}" ;; esac

tmp="$(mktemp -d)"
cat >"$tmp/arenagc.pc" <<EOF
prefix=$prefix
libdir=$pc_libdir
includedir=\${prefix}/include

Name: arenagc
Description: CPython's memory system for C: a pymalloc-style allocator, reference-counted objects and a generational cycle collector
URL: https://docs.rs/arenagc
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir}$libs_rpath -larenagc
Libs.private: -lpthread -ldl -lm -lrt -lgcc_s
EOF
put 644 "$tmp/arenagc.pc" "$libdir/pkgconfig/arenagc.pc"

# The CMake package finds the prefix from its own location, so a staged or moved tree works.
cmake_dir="$libdir/cmake/arenagc"
case "$cmake_dir" in
"$prefix"/*)
    rel="${cmake_dir#"$prefix"/}"
    up="$(echo "$rel" | sed 's|[^/][^/]*|..|g')"
    prefix_expr="\${CMAKE_CURRENT_LIST_DIR}/$up"
    ;;
*) prefix_expr="$prefix" ;;
esac
libdir_rel="${libdir#"$prefix"/}"
[ "$libdir_rel" != "$libdir" ] && libdir_expr="\${_arenagc_prefix}/$libdir_rel" || libdir_expr="$libdir"
cat >"$tmp/arenagcConfig.cmake" <<EOF
# arenagc $version, installed by ffi/install.sh. Use:
#   find_package(arenagc $major.0 REQUIRED)
#   target_link_libraries(app PRIVATE arenagc::arenagc)          # libarenagc.so
#   target_link_libraries(app PRIVATE arenagc::arenagc_static)   # libarenagc.a
# Variables: arenagc_VERSION, arenagc_INCLUDE_DIR, arenagc_MALLOC_LIBRARY (for LD_PRELOAD).
# A program in CMake's build tree gets an RPATH to the library (CMake's default); set
# CMAKE_INSTALL_RPATH (or CMAKE_INSTALL_RPATH_USE_LINK_PATH) to keep one after install.
get_filename_component(_arenagc_prefix "$prefix_expr" ABSOLUTE)
set(arenagc_VERSION "$version")
set(arenagc_INCLUDE_DIR "\${_arenagc_prefix}/include")
set(_arenagc_libdir "$libdir_expr")
set(arenagc_MALLOC_LIBRARY "\${_arenagc_libdir}/libarenagc_malloc.so")

if(NOT TARGET arenagc::arenagc)
  add_library(arenagc::arenagc SHARED IMPORTED)
  set_target_properties(arenagc::arenagc PROPERTIES
    IMPORTED_LOCATION "\${_arenagc_libdir}/libarenagc.so.$version"
    IMPORTED_SONAME "libarenagc.so.$major"
    INTERFACE_INCLUDE_DIRECTORIES "\${arenagc_INCLUDE_DIR}")
endif()
if(NOT TARGET arenagc::arenagc_static)
  add_library(arenagc::arenagc_static STATIC IMPORTED)
  set_target_properties(arenagc::arenagc_static PROPERTIES
    IMPORTED_LOCATION "\${_arenagc_libdir}/libarenagc.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "\${arenagc_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "pthread;dl;m;rt;gcc_s")
endif()
unset(_arenagc_prefix)
unset(_arenagc_libdir)
EOF
# Compatible: the same MAJOR and at least the version asked for (the ABI policy).
cat >"$tmp/arenagcConfigVersion.cmake" <<EOF
set(PACKAGE_VERSION "$version")
if(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(PACKAGE_FIND_VERSION_MAJOR STREQUAL "$major"
       AND NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
else()
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
endif()
# Built for 64-bit x86-64 Linux only.
if(CMAKE_SIZEOF_VOID_P AND NOT CMAKE_SIZEOF_VOID_P STREQUAL "8")
  set(PACKAGE_VERSION "\${PACKAGE_VERSION} (64bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
EOF
put 644 "$tmp/arenagcConfig.cmake" "$cmake_dir/arenagcConfig.cmake"
put 644 "$tmp/arenagcConfigVersion.cmake" "$cmake_dir/arenagcConfigVersion.cmake"

printf '%s\n' "${installed[@]}" "$manifest" >"$tmp/install-manifest.txt"
put 644 "$tmp/install-manifest.txt" "$manifest"
rm -rf "$tmp"

echo "arenagc $version installed under $destdir$prefix:"
printf '  %s\n' "${installed[@]}"
