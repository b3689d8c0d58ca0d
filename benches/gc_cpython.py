"""CPython timing of the workloads of benches/gc.rs (run: python3 benches/gc_cpython.py).

N two-object cycles (N = 1,000,000 unless ARENAGC_BENCH_N says otherwise); each figure is the
median of REPEAT runs, printed as `name: median`.

`python3 benches/gc_cpython.py SHAPE` runs one shape once and prints bare numbers, for
benches/gc_side_by_side.rs: collect_garbage (ns per object), full_collect_live (ns per live
object), new_clone_drop_drop (ns), young_pauses (p50 p99 max, microseconds of thread CPU time).
"""
import gc
import os
import statistics
import sys
import time

N = int(os.environ.get("ARENAGC_BENCH_N", "1000000"))
REPEAT = int(os.environ.get("ARENAGC_BENCH_REPEAT", "7"))


class Node:
    __slots__ = ("next",)


def make_garbage(n):
    for _ in range(n):
        a = Node()
        b = Node()
        a.next = b
        b.next = a


def make_live(n):
    out = []
    for _ in range(n):
        a = Node()
        b = Node()
        a.next = b
        b.next = a
        out.append(a)
    return out


def median_of(f):
    return statistics.median(f() for _ in range(REPEAT))


def create_cycles():
    gc.collect()
    t = time.perf_counter()
    make_garbage(N)
    dt = time.perf_counter() - t
    gc.collect()
    return dt


def collect_garbage():
    make_garbage(N)
    t = time.perf_counter()
    gc.collect()
    return time.perf_counter() - t


def new_clone_drop_drop():
    m = 1_000_000
    t = time.perf_counter()
    for _ in range(m):
        a = Node()
        b = a
        del b
        del a
    return (time.perf_counter() - t) / m


def young_pauses(clock=time.perf_counter):
    gc.enable()
    live = make_live(N)
    gc.collect()
    pauses = []
    start = [0.0]

    def cb(phase, info):
        if info["generation"] >= 2:
            return
        if phase == "start":
            start[0] = clock()
        else:
            pauses.append(clock() - start[0])

    gc.callbacks.append(cb)
    make_garbage(N)
    gc.callbacks.remove(cb)
    gc.disable()
    del live
    gc.collect()
    pauses.sort()
    p99 = pauses[min(len(pauses) - 1, int(len(pauses) * 0.99))]
    return statistics.mean(pauses), statistics.median(pauses), p99, max(pauses), len(pauses)


def main():
    gc.disable()
    print(f"python {sys.version.split()[0]}  N={N}  repeat={REPEAT}")
    t = median_of(create_cycles)
    print(f"create_cycles: {t * 1e3:.2f} ms  ({t / (2 * N) * 1e9:.1f} ns/object)")
    t = median_of(collect_garbage)
    print(f"collect_garbage: {t * 1e3:.2f} ms  ({t / (2 * N) * 1e9:.1f} ns/object)")
    live = make_live(N)
    gc.collect()

    def full():
        t = time.perf_counter()
        gc.collect()
        return time.perf_counter() - t

    t = median_of(full)
    print(f"full_collect_live: {t * 1e3:.2f} ms  ({t / (2 * N) * 1e9:.1f} ns/live object)")
    del live
    gc.collect()
    t = median_of(new_clone_drop_drop)
    print(f"new_clone_drop_drop: {t * 1e9:.1f} ns")
    avg, p50, p99, mx, count = young_pauses()
    print(
        f"young_pauses: avg {avg * 1e6:.2f} us, p50 {p50 * 1e6:.2f} us, "
        f"p99 {p99 * 1e6:.2f} us, max {mx * 1e6:.2f} us, count {count}"
    )


def full_collect_live():
    live = make_live(N)
    gc.collect()
    t = time.perf_counter()
    gc.collect()
    dt = time.perf_counter() - t
    del live
    gc.collect()
    return dt


def shape(name):
    """One run of one shape, bare numbers (see the module doc)."""
    gc.disable()
    if name == "collect_garbage":
        print(f"{collect_garbage() / (2 * N) * 1e9:.3f}")
    elif name == "full_collect_live":
        print(f"{full_collect_live() / (2 * N) * 1e9:.3f}")
    elif name == "new_clone_drop_drop":
        print(f"{new_clone_drop_drop() * 1e9:.3f}")
    elif name == "young_pauses":
        _, p50, p99, mx, _ = young_pauses(time.thread_time)
        print(f"{p50 * 1e6:.3f} {p99 * 1e6:.3f} {mx * 1e6:.3f}")
    else:
        sys.exit(f"unknown shape {name}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        shape(sys.argv[1])
    else:
        main()
