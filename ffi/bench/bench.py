"""Times each workload under each allocator (LD_PRELOAD) and prints a markdown table of
medians. Called by run.sh and trace_cost.sh, which build everything first; see ffi/README.md.

Arguments: the scratch directory, then allocators as NAME=LIBRARY[|VAR=VALUE...] (the
variables are set for that allocator's runs only, e.g. arenagc-sampled=lib.so|ARENAGC_TRACE_SAMPLE=524288).
RATIOS="a/b c/d" (optional) chooses the ratio columns; by default each arenagc build against
glibc and mimalloc. WORKLOADS="mbench pairs,python3 alloc_heavy.py" (optional) picks workloads."""
import os
import statistics
import subprocess
import sys
import time


def main():
    runs = int(os.environ.get("RUNS", "5"))
    work = sys.argv[1]  # scratch dir holding mbench, big.c
    allocs = [("glibc", "", {})]
    for a in sys.argv[2:]:
        name, rest = a.split("=", 1)
        lib, *pairs = rest.split("|")
        allocs.append((name, lib, dict(p.split("=", 1) for p in pairs)))
    python = subprocess.run(
        ["python3", "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    here = os.path.dirname(os.path.abspath(__file__))
    workloads = [
        ("mbench pairs", [f"{work}/mbench", "pairs"], {}),
        ("mbench batch", [f"{work}/mbench", "batch"], {}),
        ("mbench random", [f"{work}/mbench", "random"], {}),
        ("mbench prodcons", [f"{work}/mbench", "prodcons"], {}),
        ("python3 alloc_heavy.py", [python, f"{here}/alloc_heavy.py"], {"PYTHONMALLOC": "malloc"}),
        ("gcc -O1 big.c", ["gcc", "-O1", "-c", f"{work}/big.c", "-o", f"{work}/big.o"], {}),
    ]
    if os.environ.get("WORKLOADS"):
        keep = os.environ["WORKLOADS"].split(",")
        workloads = [w for w in workloads if w[0] in keep]
    times = {(w[0], a[0]): [] for w in workloads for a in allocs}
    for r in range(runs):
        for name, argv, env in workloads:
            for alloc, lib, extra in allocs:  # interleaved, so drift hits every allocator alike
                e = dict(os.environ, **env)
                e.pop("ARENAGC_STATS", None)
                e.update(extra)
                if lib:
                    e["LD_PRELOAD"] = lib
                t0 = time.perf_counter()
                subprocess.run(argv, env=e, check=True, stdout=subprocess.DEVNULL)
                times[(name, alloc)].append(time.perf_counter() - t0)
        print(f"run {r + 1}/{runs} done", file=sys.stderr)
    names = [a[0] for a in allocs]
    ours = [n for n in names if n.startswith("arenagc")]  # each arenagc build gets ratio columns
    print(f"Median wall time of {runs} runs, seconds (lower is better).\n")
    pairs = [tuple(r.split("/")) for r in os.environ.get("RATIOS", "").split()]
    if not pairs:
        pairs = [(o, base) for o in ours for base in ("glibc", "mimalloc")]
    ratios = [f"{a} / {b}" for a, b in pairs]
    head = "| workload | " + " | ".join(names + ratios) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, _, _ in workloads:
        med = {a: statistics.median(times[(name, a)]) for a in names}
        row = [f"{med[a]:.3f}" for a in names]
        for a, b in pairs:
            row.append(f"{med[a] / med[b]:.3f}" if a in med and b in med else "-")
        print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
