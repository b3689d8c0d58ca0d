"""Times each workload under each allocator (LD_PRELOAD) and prints a markdown table of
medians. Called by run.sh, which builds everything first; see ffi/README.md."""
import os
import statistics
import subprocess
import sys
import time


def main():
    runs = int(os.environ.get("RUNS", "5"))
    work = sys.argv[1]  # scratch dir holding mbench, big.c
    allocs = [("glibc", "")] + [tuple(a.split("=", 1)) for a in sys.argv[2:]]
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
    times = {(w[0], a[0]): [] for w in workloads for a in allocs}
    for r in range(runs):
        for name, argv, env in workloads:
            for alloc, lib in allocs:  # interleaved, so drift hits every allocator alike
                e = dict(os.environ, **env)
                e.pop("ARENAGC_STATS", None)
                if lib:
                    e["LD_PRELOAD"] = lib
                t0 = time.perf_counter()
                subprocess.run(argv, env=e, check=True, stdout=subprocess.DEVNULL)
                times[(name, alloc)].append(time.perf_counter() - t0)
        print(f"run {r + 1}/{runs} done", file=sys.stderr)
    names = [a[0] for a in allocs]
    ours = [n for n in names if n.startswith("arenagc")]  # each arenagc build gets ratio columns
    print(f"Median wall time of {runs} runs, seconds (lower is better).\n")
    ratios = [f"{o} / {base}" for o in ours for base in ("glibc", "mimalloc")]
    head = "| workload | " + " | ".join(names + ratios) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, _, _ in workloads:
        med = {a: statistics.median(times[(name, a)]) for a in names}
        row = [f"{med[a]:.3f}" for a in names]
        for o in ours:
            for base in ("glibc", "mimalloc"):
                row.append(f"{med[o] / med[base]:.2f}" if base in med else "-")
        print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
