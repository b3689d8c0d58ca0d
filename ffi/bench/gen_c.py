# Writes a large C file (argv[1]) for the gcc workload of ffi/bench/run.sh.
import sys

n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
with open(sys.argv[1], "w") as f:
    f.write("#include <stdio.h>\n#include <string.h>\n")
    f.write("struct s { int a, b; char name[16]; double d[4]; };\n")
    for i in range(n):
        f.write(
            f"static int f{i}(struct s *p, int x) {{\n"
            f"  int acc = {i};\n"
            f"  for (int k = 0; k < 4; k++) {{ p->d[k] = x * {i} + k; acc += (int)p->d[k]; }}\n"
            f"  switch (x % 5) {{ case 0: acc ^= p->a; break; case 1: acc += p->b * {i % 7}; break;\n"
            f"    case 2: acc -= (int)strlen(p->name); break; default: acc += x; }}\n"
            f"  return acc;\n}}\n"
        )
    f.write("int main(void) { struct s v = {1, 2, \"bench\", {0}}; long t = 0;\n")
    for i in range(n):
        f.write(f"  t += f{i}(&v, {i});\n")
    f.write('  printf("%ld\\n", t); return 0; }\n')
