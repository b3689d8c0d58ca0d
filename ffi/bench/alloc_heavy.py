# Allocation-heavy Python for ffi/bench/run.sh (run with PYTHONMALLOC=malloc, so every object
# goes through the preloaded allocator).
class Node:
    __slots__ = ("next", "value")

    def __init__(self, next, value):
        self.next, self.value = next, value


total = 0
for round in range(2):
    d = {str(i): [i, (i, i + 1), "x" * (i % 40)] for i in range(150000)}
    total += sum(len(v[2]) for v in d.values())
    del d
    head = None
    for i in range(300000):
        head = Node(head, i)
    del head
    s = set()
    for i in range(100000):
        s.add(f"key-{i}-{round}")
    total += len(s)
    del s
print(total)
