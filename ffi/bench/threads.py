"""Runs ffi/bench/threads.c's shapes under each allocator (LD_PRELOAD), interleaved, and prints
one markdown table per shape (medians over the rounds, ratios of medians). Called by threads.sh,
which builds everything first; see benches/README.md, "Multi-threaded workloads".

    python3 threads.py BINARY [name=/path/lib.so ...]     (glibc, no preload, always comes first)

Environment: ROUNDS (default 5), SHAPES (default "larson rptest glibc-thread alloc-test large"),
THREADS (default "1 2 4 8 16"), LARGE_THREADS (thread counts of `large`, default "1"), DURATION
(seconds per run of the fixed-time shapes, default 0.3), TIMEOUT (seconds before a run counts as
hung, default 60). Commas or spaces separate list items.

A run that crashes, hangs or prints garbage is reported on stderr with the exact command, counted
in its table cell, and the script exits with status 1 at the end.
"""
import os
import shlex
import statistics
import subprocess
import sys

SHAPES = {  # name: (unit, scale, higher is better)
    "larson": ("Mops/s", 1e-6, True),
    "rptest": ("Mops/s", 1e-6, True),
    "glibc-thread": ("Mops/s", 1e-6, True),
    "alloc-test": ("ms", 1e3, False),
    "large": ("ms", 1e3, False),
}


def env_list(name, default):
    return os.environ.get(name, default).replace(",", " ").split()


def main():
    binary = sys.argv[1]
    allocs = [("glibc", "")] + [tuple(a.split("=", 1)) for a in sys.argv[2:]]
    rounds = int(os.environ.get("ROUNDS", "5"))
    shapes = env_list("SHAPES", " ".join(SHAPES))
    threads = [int(t) for t in env_list("THREADS", "1 2 4 8 16")]
    large_threads = [int(t) for t in env_list("LARGE_THREADS", "1")]
    duration = os.environ.get("DURATION", "0.3")
    timeout = float(os.environ.get("TIMEOUT", "60"))
    for s in shapes:
        if s not in SHAPES:
            sys.exit(f"unknown shape {s}; known: {' '.join(SHAPES)}")
    names = [a[0] for a in allocs]
    ours = [n for n in names if n.startswith("arenagc")]
    bases = [b for b in ("glibc", "mimalloc") if b in names]
    failures = []
    print(
        f"{rounds} interleaved rounds (allocator order rotating), medians, ratios of medians; "
        f"fixed-time shapes run {duration} s each; {os.cpu_count()} CPUs"
    )
    for shape in shapes:
        unit, scale, higher = SHAPES[shape]
        better = (
            "higher is better; ratio > 1: arenagc faster"
            if higher
            else "lower is better; ratio < 1: arenagc faster"
        )
        print(f"\n### {shape} ({unit}, {better})\n")
        head = "| threads | " + " | ".join(names + [f"{o} / {b}" for o in ours for b in bases]) + " |"
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        for t in large_threads if shape == "large" else threads:
            argv = [binary, shape, str(t), duration]
            got = {n: [] for n in names}
            failed = {n: 0 for n in names}
            for r in range(rounds):
                for j in range(len(allocs)):
                    name, lib = allocs[(j + r) % len(allocs)]
                    env = dict(os.environ)
                    env.pop("ARENAGC_STATS", None)
                    if lib:
                        env["LD_PRELOAD"] = lib
                    cmd = (f"LD_PRELOAD={lib} " if lib else "") + shlex.join(argv)
                    try:
                        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
                        what = None if p.returncode == 0 else f"exit status {p.returncode}"
                        out = p.stdout.strip()
                        err = p.stderr.strip()
                        if what is None:
                            try:
                                got[name].append(float(out) * scale)
                            except ValueError:
                                what = f"printed {out!r}"
                    except subprocess.TimeoutExpired:
                        what, err = f"hung (killed after {timeout:g} s)", ""
                    if what:
                        failed[name] += 1
                        failures.append(f"{cmd}: {what}" + (f"; stderr: {err[-500:]}" if err else ""))
                        print(f"FAILED: {failures[-1]}", file=sys.stderr)
            med = {n: statistics.median(got[n]) if got[n] else None for n in names}
            cells = []
            for n in names:
                c = "-" if med[n] is None else f"{med[n]:.2f}"
                if failed[n]:
                    c += f" ({failed[n]} failed)"
                cells.append(c)
            for o in ours:
                for b in bases:
                    if med[o] is None or not med[b]:
                        cells.append("-")
                    else:
                        q = med[o] / med[b]
                        cells.append(f"{q:.3f}x" if q < 0.1 else f"{q:.2f}x")
            print(f"| {t} | " + " | ".join(cells) + " |", flush=True)
            print(f"{shape} T={t} done", file=sys.stderr)
    if failures:
        print(f"\n{len(failures)} failed runs:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
