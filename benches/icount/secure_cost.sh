#!/usr/bin/env bash
# What hardened mode costs, timed: the icount probe (probe.rs here) built twice from the working
# tree, once by default and once with the cargo feature `secure` (hardened mode on the inlined
# fast paths), each workload run by both binaries alternately, ROUNDS times (the order flipped
# every round, so load from other processes falls on both alike). Prints a Markdown table:
# median ns per operation (per batch of 1000 for the batch), the ratio of medians, and the range
# of the per-round ratios. Not a test; see README.md, "Hardened mode", and benches/README.md.
#
#   bash benches/icount/secure_cost.sh              # ROUNDS=7
#   ROUNDS=11 bash benches/icount/secure_cost.sh
#
# (The runtime switch, ARENAGC_SECURE=1 on the default build, takes out-of-line paths and costs
# more; benches/icount/run.sh with EXTRA_ENV=ARENAGC_SECURE=1 counts its instructions.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/target/icount"
ROUNDS="${ROUNDS:-7}"
mkdir -p "$work"

# shellcheck source=probe.sh
source "$here/probe.sh"

default_exe="$(build_probe timed-default "$root" "")"
secure_exe="$(build_probe timed-secure "$root" secure)"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds" >&2
python3 - "$default_exe" "$secure_exe" "$ROUNDS" <<'PY'
import statistics as st, subprocess, sys, time
default, secure, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
# (workload, N, unit): N operations per run, long enough (0.1-0.5 s) that start-up is noise.
work = [("hot_pair_16", 20_000_000, "pair"), ("hot_pair_64", 20_000_000, "pair"),
        ("hot_pair_256", 20_000_000, "pair"), ("c_pair_48", 20_000_000, "pair"),
        ("batch_1000x64", 10_000, "batch"), ("random_replace", 5_000_000, "op")]
times = {}
for r in range(rounds):
    order = [("default", default), ("secure", secure)]
    if r % 2:
        order.reverse()
    for w, n, _ in work:
        for name, exe in order:
            t = time.perf_counter()
            subprocess.run([exe, w, str(n)], check=True)
            times.setdefault((w, name), []).append(time.perf_counter() - t)
print("| workload | default (ns per unit) | feature `secure` | secure / default | per-round |")
print("|---|---|---|---|---|")
for w, n, unit in work:
    d, s = times[(w, "default")], times[(w, "secure")]
    per = sorted(b / a for a, b in zip(d, s))
    print(f"| {w} (ns/{unit}) | {st.median(d) * 1e9 / n:.1f} | {st.median(s) * 1e9 / n:.1f} | "
          f"{st.median(s) / st.median(d):.2f}x | {per[0]:.2f}..{per[-1]:.2f} |")
PY
