#!/usr/bin/env bash
# Same-run A/B comparison of two builds of arenagc: base = a git ref, new = the working tree
# (uncommitted changes included) or another ref. The two builds run alternately, round by round,
# so load from other processes falls on both alike. Prints one markdown table per part (medians,
# new/base ratios of medians, min..max of the per-round ratios, rounds in which new was slower)
# and writes them to target/ab/report.md. See benches/README.md, "A/B: comparing two builds".
#
#   BASE=<git ref> bash benches/ab/run.sh
#   ROUNDS=11 PARTS="rust preload gc" BASE=57e413a bash benches/ab/run.sh
#   BASE=HEAD NEW=HEAD ROUNDS=3 bash benches/ab/run.sh   # identical builds: measures the noise
#
# Environment:
#   BASE    (required) git ref of the base build
#   NEW     git ref of the new build; unset = the working tree as it is
#   ROUNDS  rounds per part (default 7)
#   PARTS   any of "rust preload gc" (default all three)
#   INNER   side_by_side rounds per invocation (default 3)
#   AB_GC_ARGS  criterion options of the gc part (default "--warm-up-time 1 --measurement-time 2")
#   ARENAGC_BENCH_N  objects of the gc workloads (default 1000000, as benches/gc.rs)
#
# Builds (never in target/release itself): base in a detached worktree target/ab/base-src with
# CARGO_TARGET_DIR=target/ab/base-target; new from the repository root (or target/ab/new-src when
# NEW is set) with CARGO_TARGET_DIR=target/ab/new-target. A part whose build fails on one side
# (an older base without that bench, say) is skipped with a note, the other parts still run,
# and the script exits 3.
set -euo pipefail
shopt -s inherit_errexit

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
: "${BASE:?set BASE=<git ref>, e.g. BASE=HEAD bash benches/ab/run.sh}"
NEW="${NEW:-}"
export ROUNDS="${ROUNDS:-7}"
PARTS="${PARTS:-rust preload gc}"
ab="$root/target/ab"
export AB_DIR="$ab"
export AB_RAW="$ab/raw"
mkdir -p "$ab"
rm -rf "$AB_RAW"
started=$(date +%s)

say() { echo "[ab $(date -u +%H:%M:%S)] $*" >&2; }
load() { uptime | sed 's/.*load average: //'; }

# A detached worktree at the given ref. An existing one is refreshed in place (checkout only
# rewrites the files that differ, so cargo rebuilds no more than it must); a broken one is
# removed and made again.
worktree() {
    local dir="$1" ref="$2" sha
    sha="$(git -C "$root" rev-parse --verify "$ref^{commit}")"
    git -C "$root" worktree prune
    if [ -e "$dir/.git" ] && git -C "$dir" rev-parse --git-dir >/dev/null 2>&1 \
        && git -C "$dir" checkout -q --detach --force "$sha" && git -C "$dir" clean -qfd; then
        :
    else
        git -C "$root" worktree remove --force "$dir" 2>/dev/null || rm -rf "$dir"
        git -C "$root" worktree prune
        git -C "$root" worktree add -q --detach "$dir" "$sha"
    fi
    git -C "$dir" rev-parse --short=12 HEAD
}

# build SIDE SRC TARGET: writes $ab/SIDE.side_by_side, SIDE.gc, SIDE.so (the paths), each only
# when its build succeeded.
build() {
    local side="$1" src="$2" target="$3" bench pkg=()
    # Since the bench crate split the benches are the arenagc-bench package's (benches/Cargo.toml);
    # an older base has them in the root package.
    [ -f "$src/benches/Cargo.toml" ] && pkg=(-p arenagc-bench)
    rm -f "$ab/$side.side_by_side" "$ab/$side.gc" "$ab/$side.so"
    # Both benches in one cargo call first (one compile of the crate, so from one state of a
    # working tree that someone may be editing); one by one if that fails (an older base may
    # lack a bench, or have it without `harness = false`).
    say "build $side: benches side_by_side and gc ($src)"
    if (cd "$src" && CARGO_TARGET_DIR="$target" cargo bench "${pkg[@]}" --bench side_by_side --bench gc --no-run \
        --message-format=json >"$ab/$side.benches.json" 2>"$ab/$side.benches.log"); then
        for bench in side_by_side gc; do
            python3 "$here/ab.py" exe "$ab/$side.benches.json" "$bench" >"$ab/$side.$bench" || rm -f "$ab/$side.$bench"
        done
    else
        say "build $side: the two benches together failed; one by one"
    fi
    for bench in side_by_side gc; do
        [ -s "$ab/$side.$bench" ] && continue
        say "build $side: bench $bench ($src)"
        if (cd "$src" && CARGO_TARGET_DIR="$target" cargo bench "${pkg[@]}" --bench "$bench" --no-run \
            --message-format=json >"$ab/$side.$bench.json" 2>"$ab/$side.$bench.log"); then
            python3 "$here/ab.py" exe "$ab/$side.$bench.json" "$bench" >"$ab/$side.$bench" || rm -f "$ab/$side.$bench"
        else
            say "build $side: bench $bench FAILED (see $ab/$side.$bench.log)"
            tail -n 15 "$ab/$side.$bench.log" >&2
        fi
    done
    say "build $side: arenagc-malloc"
    if (cd "$src" && CARGO_TARGET_DIR="$target" cargo build --release -p arenagc-malloc \
        >"$ab/$side.malloc.log" 2>&1) && [ -e "$target/release/libarenagc_malloc.so" ]; then
        # A copy: a later build in that target directory cannot change it under the run.
        cp "$target/release/libarenagc_malloc.so" "$ab/$side-libarenagc_malloc.so"
        echo "$ab/$side-libarenagc_malloc.so" >"$ab/$side.so"
    else
        say "build $side: arenagc-malloc FAILED (see $ab/$side.malloc.log)"
        tail -n 15 "$ab/$side.malloc.log" >&2
    fi
}

base_sha="$(worktree "$ab/base-src" "$BASE")"
build base "$ab/base-src" "$ab/base-target"
if [ -n "$NEW" ]; then
    new_sha="$(worktree "$ab/new-src" "$NEW")"
    new_desc="$NEW = $new_sha"
    build new "$ab/new-src" "$ab/new-target"
else
    new_desc="working tree ($(git -C "$root" describe --dirty --always))"
    build new "$root" "$ab/new-target"
fi
built=$(date +%s)

report="$ab/report.md"
{
    echo "## A/B: base $BASE = $base_sha, new = $new_desc"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); load average at start $(load); $ROUNDS rounds; parts: $PARTS;" \
        "host $(nproc) cores. Ratios are new/base (lower is faster); \"per-round\" is the min..max of the" \
        "ratios of the same round, \"rounds new slower\" counts the rounds where new/base > 1."
    echo
} >"$report"
cat "$report"

skipped=0
skip() {
    local msg="_$1: skipped, $2._"
    skipped=$((skipped + 1))
    say "$msg"
    printf '%s\n\n' "$msg" | tee -a "$report"
}

have() { [ -s "$ab/base.$1" ] && [ -s "$ab/new.$1" ]; }

for part in $PARTS; do
    case "$part" in
    rust)
        if have side_by_side; then
            if python3 "$here/ab.py" rust "$(cat "$ab/base.side_by_side")" "$(cat "$ab/new.side_by_side")" "$ab/part-rust.md"; then
                { cat "$ab/part-rust.md"; echo; } >>"$report"
            else
                skip rust "a side_by_side run failed or printed no table it could read (target/ab/raw/rust-*)"
            fi
        else
            skip rust "the side_by_side bench did not build on both sides"
        fi
        ;;
    preload)
        if have so; then
            work="$ab/preload-work"
            rm -rf "$work" && mkdir -p "$work"
            # As ffi/bench/run.sh does (always the working tree's bench files: only the library differs).
            gcc -O2 -fno-builtin -pthread -o "$work/mbench" "$root/ffi/bench/mbench.c"
            python3 "$root/ffi/bench/gen_c.py" "$work/big.c" 500
            if python3 "$here/ab.py" preload "$root/ffi/bench/bench.py" "$work" \
                "$(cat "$ab/base.so")" "$(cat "$ab/new.so")" "$ab/part-preload.md"; then
                { cat "$ab/part-preload.md"; echo; } >>"$report"
            else
                skip preload "a bench.py run failed or printed no table it could read (target/ab/raw/preload-*)"
            fi
        else
            skip preload "libarenagc_malloc.so did not build on both sides"
        fi
        ;;
    gc)
        if have gc; then
            if python3 "$here/ab.py" gc "$(cat "$ab/base.gc")" "$(cat "$ab/new.gc")" "$ab/part-gc.md"; then
                { cat "$ab/part-gc.md"; echo; } >>"$report"
            else
                skip gc "a gc bench run failed or printed nothing it could read (target/ab/raw/gc-*)"
            fi
        else
            skip gc "the gc bench did not build on both sides"
        fi
        ;;
    *)
        echo "unknown part '$part' (rust, preload, gc)" >&2
        exit 2
        ;;
    esac
done

end=$(date +%s)
tail_line="Load average at end $(load). Builds $((built - started)) s, measurements $((end - built)) s. Raw output of every invocation: target/ab/raw/."
printf '%s\n' "$tail_line" | tee -a "$report"
say "report written to $report"
if [ "$skipped" -gt 0 ]; then
    say "$skipped part(s) skipped (see the build logs above)"
    exit 3
fi
