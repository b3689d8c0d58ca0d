#!/usr/bin/env bash
# Fetch Lua 5.4's source and its own test suite (`testes`) into DIR (default target/lua) and
# print the source directory (DIR/lua-5.4.8, with testes/ inside).
#
# Where from: PyPI, a package registry this project's machines reach (lua.org and GitHub are
# not reachable). The source distribution of `lupa` (Python bindings to Lua) carries Lua 5.4.8's
# repository tree, testes included, under third-party/lua54; the archive is pinned by version and
# SHA-256, so what is built and tested is always the same. Downloaded with python3 (every machine
# of this project has it; curl is not guaranteed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${1:-$root/target/lua}"
version=2.8
sha256=d8022641b9ec8ecf2c5ecbe9f47e5a70e0b87c4b5ae921b92cb02a638e0acd08
url="https://files.pythonhosted.org/packages/c3/a6/0f869fbb07c393f15473b1eefefb7b5bec162fb7481803d040ed4dc46002/lupa-$version.tar.gz"
src="$dir/lua-5.4.8"
mkdir -p "$dir"
# One fetch at a time (tests may run this script concurrently): the rest wait, then find it.
exec 9>"$dir/.fetch.lock"
flock 9
if [ -f "$src/.complete" ]; then
    echo "$src"
    exit 0
fi
archive="$dir/lupa-$version.tar.gz"
if [ ! -f "$archive" ] || ! echo "$sha256  $archive" | sha256sum -c --status; then
    python3 - "$url" "$archive.part" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=120) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
PY
    mv "$archive.part" "$archive"
fi
if ! echo "$sha256  $archive" | sha256sum -c --status; then
    echo "fetch.sh: $archive does not have the pinned SHA-256" >&2
    exit 1
fi
rm -rf "$dir/unpack" "$src"
mkdir -p "$dir/unpack"
tar xzf "$archive" -C "$dir/unpack" "lupa-$version/third-party/lua54"
mv "$dir/unpack/lupa-$version/third-party/lua54" "$src"
rm -rf "$dir/unpack"
grep -q 'LUA_VERSION_RELEASE\s*"8"' "$src/lua.h" || {
    echo "fetch.sh: $src/lua.h is not Lua 5.4.8" >&2
    exit 1
}
touch "$src/.complete" # written last: a tree without it is redone
echo "$src"
