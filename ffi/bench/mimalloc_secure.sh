#!/usr/bin/env bash
# Build mimalloc with its own checks as a preload library (for benches, not tests): its source
# as the libmimalloc-sys crate vendors it (fetched by cargo for benches/threads), compiled with
# -DMI_SECURE=LEVEL. Level 3 encodes free lists, rejects invalid frees and puts guard pages
# around each page: the nearest to arenagc's checks; level 4 adds a double-free scan.
#
#   bash ffi/bench/mimalloc_secure.sh OUT.so LEVEL
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$1"
level="$2"
misrc="$(cd "$root" && cargo metadata --format-version 1 \
    --manifest-path benches/threads/Cargo.toml | python3 -c '
import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "libmimalloc-sys":
        print(os.path.dirname(p["manifest_path"]) + "/c_src/mimalloc/v2")')"
gcc -shared -fPIC -O3 -DNDEBUG -DMI_SECURE="$level" -DMI_MALLOC_OVERRIDE \
    -I"$misrc/include" -o "$out" "$misrc/src/static.c" -lpthread
