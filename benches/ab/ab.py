"""A/B runner for benches/ab/run.sh: runs the base and the new build alternately (base first in
odd rounds, new first in even ones) and prints one markdown table per part, with medians, the
ratio new/base of the medians and the spread of the per-round ratios. Python 3 standard library
only.

Subcommands (run.sh passes the paths):
  exe   CARGO_JSON BENCH_NAME          -> prints the bench executable named in cargo's JSON output
  rust  BASE_EXE NEW_EXE OUT.md        -> benches/side_by_side.rs, arenagc and glibc columns
  preload BENCH_PY WORK BASE_SO NEW_SO OUT.md -> ffi/bench/bench.py, one run per round
  gc    BASE_EXE NEW_EXE OUT.md        -> benches/gc.rs, arenagc groups only

Environment: ROUNDS (rounds, default 7), INNER (side_by_side rounds per invocation, default 3),
AB_RAW (folder for the raw output of every invocation), AB_GC_ARGS (criterion options for the gc
part), ARENAGC_BENCH_N (objects per gc workload, passed through).
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROUNDS = int(os.environ.get("ROUNDS", "7"))
RAW = os.environ.get("AB_RAW", "")


def log(msg):
    print(f"[ab {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def save_raw(name, text):
    if RAW:
        os.makedirs(RAW, exist_ok=True)
        with open(os.path.join(RAW, name), "w") as f:
            f.write(text)


def order(r):
    """Which side runs first in round r: alternate, so neither always gets the warmer slot."""
    return ("base", "new") if r % 2 == 0 else ("new", "base")


def run(argv, env=None, name=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(argv, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if name:
        save_raw(name, p.stdout + ("\n--- stderr ---\n" + p.stderr if p.stderr else ""))
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-3000:])
        raise SystemExit(f"{argv[0]} exited with {p.returncode}")
    return p.stdout


def fmt(x, digits=None):
    if x is None:
        return "-"
    if digits is None:
        digits = 1 if abs(x) >= 10 else 2 if abs(x) >= 1 else 3
    return f"{x:.{digits}f}"


def med(v):
    return statistics.median(v) if v else None


def ratio_cells(base, new):
    """Cells: ratio of medians, min..max of per-round ratios, rounds where new was slower."""
    if not base or not new:
        return ["-", "-", "-"]
    n = min(len(base), len(new))
    per = [new[i] / base[i] for i in range(n) if base[i] > 0]
    mb, mn = med(base), med(new)
    r = f"{mn / mb:.3f}" if mb else "-"
    spread = f"{min(per):.2f}..{max(per):.2f}" if per else "-"
    worse = f"{sum(1 for x in per if x > 1)}/{len(per)}"
    return [r, spread, worse]


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    print(text, flush=True)


# ---------------------------------------------------------------------------------------------
def cmd_exe(json_path, bench):
    """The executable of bench target `bench` in `cargo ... --message-format=json` output."""
    exe = None
    with open(json_path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                m = json.loads(line)
            except ValueError:
                continue
            t = m.get("target") or {}
            if (
                m.get("reason") == "compiler-artifact"
                and t.get("name") == bench
                and "bench" in t.get("kind", [])
                and m.get("executable")
            ):
                exe = m["executable"]
    if not exe:
        raise SystemExit(f"no executable for bench {bench} in {json_path}")
    print(exe)


# ---------------------------------------------------------------------------------------------
def parse_md(text, cols):
    """Rows of the first markdown table whose header starts with `| workload`: {workload: {col:
    float}} for the named columns (missing columns are left out)."""
    rows, idx, names = {}, None, []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            if idx is not None and rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if idx is None:
            if cells and cells[0] == "workload":
                idx = {c: cells.index(c) for c in cols if c in cells}
            continue
        if set(line) <= set("|-: "):
            continue
        vals = {}
        for c, i in idx.items():
            try:
                vals[c] = float(cells[i].rstrip("x"))
            except (ValueError, IndexError):
                pass
        rows[cells[0]] = vals
        names.append(cells[0])
    return names, rows


def cmd_rust(base_exe, new_exe, out):
    inner = os.environ.get("INNER", "3")
    exes = {"base": base_exe, "new": new_exe}
    data = {"base": {}, "new": {}}  # side -> workload -> col -> [values per round]
    names = []
    t0 = time.time()
    for r in range(ROUNDS):
        for side in order(r):
            # `--bench` as cargo bench passes it; the binary ignores its arguments.
            text = run([exes[side], "--bench"], env={"ROUNDS": inner}, name=f"rust-{r + 1}-{side}.txt")
            ws, rows = parse_md(text, ["arenagc", "glibc"])
            if not rows:
                raise SystemExit(f"side_by_side ({side}) printed no table")
            for w in ws:
                if w not in names:
                    names.append(w)
                for c, v in rows[w].items():
                    data[side].setdefault(w, {}).setdefault(c, []).append(v)
        log(f"rust: round {r + 1}/{ROUNDS} done ({time.time() - t0:.0f} s)")
    head = [
        "workload", "arenagc base", "arenagc new", "new/base", "per-round new/base", "rounds new slower",
        "glibc base", "glibc new", "glibc new/base (drift)",
    ]
    rows = []
    for w in names:
        b = data["base"].get(w, {})
        n = data["new"].get(w, {})
        ab_, an = b.get("arenagc", []), n.get("arenagc", [])
        gb, gn = b.get("glibc", []), n.get("glibc", [])
        gr = f"{med(gn) / med(gb):.3f}" if gb and gn else "-"
        rows.append([w, fmt(med(ab_)), fmt(med(an))] + ratio_cells(ab_, an) + [fmt(med(gb)), fmt(med(gn)), gr])
    text = (
        f"### rust: benches/side_by_side.rs ({ROUNDS} rounds x {inner} per invocation; median ns per unit; "
        f"{time.time() - t0:.0f} s)\n\n" + table(head, rows)
    )
    write(out, text)


# ---------------------------------------------------------------------------------------------
def cmd_preload(bench_py, work, base_so, new_so, out):
    libs = {"base": base_so, "new": new_so}
    data = {}  # alloc name -> workload -> [seconds per round]
    names = []
    t0 = time.time()
    for r in range(ROUNDS):
        # One run of bench.py per round (RUNS=1): it interleaves glibc, then the two libraries in
        # the order given, per workload. The order of base and new alternates between rounds.
        args = [f"{s}={libs[s]}" for s in order(r)]
        text = run(["python3", bench_py, work] + args, env={"RUNS": "1"}, name=f"preload-{r + 1}.txt")
        ws, rows = parse_md(text, ["glibc", "base", "new"])
        if not rows:
            raise SystemExit("bench.py printed no table")
        for w in ws:
            if w not in names:
                names.append(w)
            for c, v in rows[w].items():
                data.setdefault(c, {}).setdefault(w, []).append(v)
        log(f"preload: round {r + 1}/{ROUNDS} done ({time.time() - t0:.0f} s)")
    head = ["workload", "glibc", "base", "new", "new/base", "per-round new/base", "rounds new slower"]
    rows = []
    for w in names:
        g, b, n = (data.get(c, {}).get(w, []) for c in ("glibc", "base", "new"))
        rows.append([w, fmt(med(g), 3), fmt(med(b), 3), fmt(med(n), 3)] + ratio_cells(b, n))
    text = (
        f"### preload: ffi/bench/bench.py under LD_PRELOAD ({ROUNDS} rounds; median wall time, seconds; "
        f"{time.time() - t0:.0f} s)\n\n" + table(head, rows)
    )
    write(out, text)


# ---------------------------------------------------------------------------------------------
UNIT_NS = {"ps": 1e-3, "ns": 1.0, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9}
GC_GROUPS = ["create_cycles", "collect_garbage", "full_collect_live", "new_clone_drop_drop"]


def parse_gc(text):
    """{metric: value} from one run of the gc bench: criterion's point estimates (ns per
    iteration) of the arenagc functions, and the printed young-pause and after-churn lines."""
    vals = {}
    last_id = None
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"^(\S+/arenagc)\b", s)
        if m:
            last_id = m.group(1)
        m = re.search(r"time:\s*\[\s*\S+\s+\S+\s+([\d.]+)\s*(\S+)\s+[\d.]+\s*\S+\s*\]", s)
        if m and last_id:
            vals[last_id] = float(m.group(1)) * UNIT_NS[m.group(2)]
            last_id = None
        if s.startswith("young_pauses/arenagc:"):
            for k in ("avg", "p50", "p99", "max"):
                m = re.search(rf"\b{k} ([\d.]+) us", s)
                if m:
                    vals[f"young {k}"] = float(m.group(1))
            m = re.search(r"count (\d+)", s)
            if m:
                vals["young count"] = float(m.group(1))
        if s.startswith("full_collect_after_churn/arenagc:"):
            m = re.search(r"median ([\d.]+) ms", s)
            if m:
                vals["after churn"] = float(m.group(1)) * 1e6
    return vals


def cmd_gc(base_exe, new_exe, out):
    n = int(os.environ.get("ARENAGC_BENCH_N", "1000000"))
    crit = os.environ.get("AB_GC_ARGS", "--warm-up-time 1 --measurement-time 2").split()
    filt = "^(" + "|".join(GC_GROUPS) + ")/arenagc$"
    exes = {"base": base_exe, "new": new_exe}
    data = {"base": {}, "new": {}}
    t0 = time.time()
    for r in range(ROUNDS):
        for side in order(r):
            # Criterion's own files go to a folder of each side's (CARGO_TARGET_DIR/criterion);
            # --discard-baseline keeps it from comparing with or saving a previous run.
            env = {"CARGO_TARGET_DIR": os.path.join(os.environ.get("AB_DIR", "."), f"criterion-{side}")}
            argv = [exes[side], "--bench", "--noplot", "--discard-baseline"] + crit + [filt]
            text = run(argv, env=env, name=f"gc-{r + 1}-{side}.txt")
            vals = parse_gc(text)
            if not vals:
                raise SystemExit(f"gc bench ({side}) printed nothing this script can read")
            for k, v in vals.items():
                data[side].setdefault(k, []).append(v)
        log(f"gc: round {r + 1}/{ROUNDS} done ({time.time() - t0:.0f} s)")
    objs = 2 * n
    metrics = [
        ("collect_garbage/arenagc", f"collect garbage: {objs // 1000}k objects in {n // 1000}k cycles (ns/object)", objs),
        ("full_collect_live/arenagc", f"full collection, {objs // 1000}k live, fresh heap (ns/object)", objs),
        ("after churn", f"full collection, {objs // 1000}k live, after churn (ns/object)", objs),
        ("new_clone_drop_drop/arenagc", "new + clone + drop + drop (ns)", 1),
        ("create_cycles/arenagc", f"create {n // 1000}k two-object cycles (ns/object)", objs),
        ("young p50", "young pause p50 (us)", 1),
        ("young p99", "young pause p99 (us)", 1),
        ("young avg", "young pause average (us)", 1),
    ]
    head = ["measurement", "base", "new", "new/base", "per-round new/base", "rounds new slower"]
    rows = []
    for key, label, div in metrics:
        b = [v / div for v in data["base"].get(key, [])]
        nw = [v / div for v in data["new"].get(key, [])]
        if not b and not nw:
            rows.append([label, "not printed", "not printed", "-", "-", "-"])
            continue
        rows.append([label, fmt(med(b)), fmt(med(nw))] + ratio_cells(b, nw))
    counts = {s: data[s].get("young count", []) for s in data}
    note = ""
    if counts["base"] or counts["new"]:
        note = (
            f"\nYoung collections per run: base {fmt(med(counts['base']), 0)}, new {fmt(med(counts['new']), 0)} "
            "(medians; a different count means different collection triggers, not only different speed).\n"
        )
    text = (
        f"### gc: benches/gc.rs, arenagc only ({ROUNDS} rounds; criterion `{' '.join(crit)}`, point estimate "
        f"per run; medians over runs; {time.time() - t0:.0f} s)\n\n" + table(head, rows) + note
    )
    write(out, text)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"exe": cmd_exe, "rust": cmd_rust, "preload": cmd_preload, "gc": cmd_gc}[cmd](*args)


if __name__ == "__main__":
    main()
