#!/usr/bin/env bash
# Fetch Lua 5.4's source from Debian's source packages (the registry this project's machines
# reach) into DIR (default target/lua): DIR/lua-5.4.*/src. Debian's package does not carry
# Lua's own test suite (lua-5.4.x-tests.tar.gz, only on lua.org); ffi/lua/scripts/ is ours.
# Needs apt-get (run as root, or with sudo available). Prints the src directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${1:-$root/target/lua}"
mkdir -p "$dir"
if src=$(ls -d "$dir"/lua-5.4.*/src 2>/dev/null | head -n 1) && [ -f "$src/lua.h" ]; then
    echo "$src"
    exit 0
fi
sudo_=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo_="sudo"
parts="$dir/apt-sources"
mkdir -p "$parts"
# The machine's own deb sources, as deb-src, in a private list (the system's stays untouched).
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && sed 's/^Types: deb$/Types: deb-src/' "$f" >"$parts/$(basename "$f")"
done
if [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$parts/from-sources-list.list"
fi
opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$parts")
$sudo_ apt-get "${opts[@]}" update -qq >/dev/null 2>&1
(cd "$dir" && $sudo_ apt-get "${opts[@]}" source --download-only -qq lua5.4 >/dev/null 2>&1)
tarball=$(ls "$dir"/lua5.4_5.4.*.orig.tar.gz | head -n 1)
tar xzf "$tarball" -C "$dir"
ls -d "$dir"/lua-5.4.*/src | head -n 1
