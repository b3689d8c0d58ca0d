#!/usr/bin/env python3
"""Print the allocator benchmark table (medians from criterion's estimates, ratios against the
other allocators of the same run) as markdown. Usage: python3 benches/report.py [target-dir]"""
import json, os, sys

root = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "target", "criterion")
ALLOCS = ["arenagc", "glibc", "mimalloc", "jemalloc"]

def median(group, alloc, param=None):
    parts = [root, group, alloc] + ([str(param)] if param is not None else []) + ["new", "estimates.json"]
    try:
        with open(os.path.join(*parts)) as f:
            return json.load(f)["median"]["point_estimate"]
    except OSError:
        return None

rows = [(f"hot pair {s} B", "hot_pair", s) for s in (16, 32, 64, 128, 256, 512)]
rows += [("batch 1000 x 64 B", "batch_1000x64", None),
         ("random replace (1000 ops, 100k live)", "random_replace_100k", None),
         ("producer/consumer 100k x 48 B", "producer_consumer_100k", None),
         ("realloc 16 -> 512 B", "realloc_16_to_512", None)]

def fmt(ns):
    if ns is None:
        return "-"
    return f"{ns:.1f} ns" if ns < 10_000 else f"{ns / 1000:.1f} µs" if ns < 10_000_000 else f"{ns / 1e6:.2f} ms"

print("| workload | " + " | ".join(ALLOCS) + " | arenagc / mimalloc | arenagc / glibc |")
print("|---" * (len(ALLOCS) + 3) + "|")
for label, group, param in rows:
    m = {a: median(group, a, param) for a in ALLOCS}
    r = lambda o: f"{m['arenagc'] / m[o]:.2f}x" if m["arenagc"] and m[o] else "-"
    print(f"| {label} | " + " | ".join(fmt(m[a]) for a in ALLOCS) + f" | {r('mimalloc')} | {r('glibc')} |")
