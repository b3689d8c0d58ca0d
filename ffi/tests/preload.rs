//! Real programs under `LD_PRELOAD` of `libarenagc_malloc.so`, each checked for success and for
//! the allocator having served them: `ARENAGC_STATS=1` makes every process print its table at
//! exit, and each test asserts arenas were mapped and pools used.

mod common;

use common::{ExitStats, Link, cc_test, exit_stats, preload, run_ok, scratch};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A command with the malloc replacement preloaded and stats at exit on.
fn preloaded(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env("LD_PRELOAD", preload())
        .env("ARENAGC_STATS", "1")
        .env_remove("ARENAGC_DEBUG");
    c
}

/// Assert the tables show real use: at least `min_arenas` arenas mapped in one process, and
/// small blocks in use at exit somewhere.
fn assert_served(what: &str, stats: &[ExitStats], min_arenas: u64) {
    assert!(!stats.is_empty(), "{what}: no statistics table at exit");
    let best = stats
        .iter()
        .map(|s| s.arenas_allocated_total)
        .max()
        .unwrap_or(0);
    assert!(
        best >= min_arenas,
        "{what}: at most {best} arenas mapped (want >= {min_arenas}): {stats:?}"
    );
    assert!(
        stats.iter().any(|s| s.pools > 0 && s.blocks_in_use > 0),
        "{what}: no small blocks in use: {stats:?}"
    );
}

/// A fresh empty directory under the scratch dir.
fn fresh_dir(name: &str) -> PathBuf {
    let d = scratch().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create dir");
    d
}

#[test]
fn python_builds_and_drops_millions_of_objects() {
    // The real interpreter, not a pyenv shim script.
    let (exe, _) =
        run_ok(Command::new("python3").args(["-c", "import sys; print(sys.executable)"]));
    let script = r#"
import gc
class Node:
    __slots__ = ("left", "right", "value")
    def __init__(self, left, right, value):
        self.left, self.right, self.value = left, right, value
total = 0
for round in range(3):
    d = {i: (str(i), [i, i + 1], float(i)) for i in range(200000)}
    total += len(d)
    del d
    nodes = None
    for i in range(200000):
        nodes = Node(nodes, None, i)
    del nodes
    cyc = [[] for _ in range(100000)]
    for a, b in zip(cyc, cyc[1:]):
        a.append(b); b.append(a)
    del cyc, a, b
    gc.collect()
print("python done", total)
"#;
    let (out, err) = run_ok(
        preloaded(exe.trim())
            .args(["-c", script])
            .env("PYTHONMALLOC", "malloc"),
    );
    assert_eq!(out.trim(), "python done 600000");
    assert_served("python3", &exit_stats(&err), 20);
}

#[test]
fn git_init_commit_log() {
    let dir = fresh_dir("git-repo");
    for i in 0..200 {
        std::fs::write(
            dir.join(format!("f{i}.txt")),
            format!("file {i}\n{}\n", "line\n".repeat(i)),
        )
        .expect("write");
    }
    let git = |args: &[&str]| {
        let mut c = preloaded("git");
        c.args(args)
            .current_dir(&dir)
            .env("HOME", &dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com");
        run_ok(&mut c)
    };
    let mut stats = Vec::new();
    for args in [
        &["init", "-q"][..],
        &["add", "."],
        &["commit", "-q", "-m", "first"],
    ] {
        stats.extend(exit_stats(&git(args).1));
    }
    std::fs::write(dir.join("f1.txt"), "changed\n").expect("write");
    stats.extend(exit_stats(&git(&["commit", "-q", "-a", "-m", "second"]).1));
    let (log, err) = git(&["log", "--stat", "--format=%s"]);
    stats.extend(exit_stats(&err));
    assert!(
        log.contains("second") && log.contains("first") && log.contains("f199.txt"),
        "git log:\n{log}"
    );
    let (count, err) = git(&["rev-list", "--count", "HEAD"]);
    stats.extend(exit_stats(&err));
    assert_eq!(count.trim(), "2");
    assert_served("git", &stats, 1);
}

/// A C file with many functions, so cc1 does real work.
fn write_generated_c(path: &Path, functions: usize) {
    let mut s = String::from("#include <stdio.h>\n");
    for i in 0..functions {
        s += &format!(
            "static int f{i}(int x) {{ int a[8] = {{0}}; for (int k = 0; k < 8; k++) a[k] = x * {i} + k; \
             switch (x & 3) {{ case 0: return a[1] + {i}; case 1: return a[2] - x; default: return a[x & 7]; }} }}\n"
        );
    }
    s += "int main(void) { long t = 0;\n";
    for i in 0..functions {
        s += &format!("t += f{i}({i});\n");
    }
    s += "printf(\"%ld\\n\", t); return 0; }\n";
    std::fs::write(path, s).expect("write generated C");
}

#[test]
fn gcc_compiles_a_c_file() {
    let dir = fresh_dir("gcc");
    let src = dir.join("gen.c");
    write_generated_c(&src, 300);
    let exe = dir.join("gen");
    let (_, err) = run_ok(preloaded("gcc").args(["-O2", "-o"]).arg(&exe).arg(&src));
    let stats = exit_stats(&err);
    assert!(
        stats.len() >= 3,
        "want tables from gcc, cc1, as, collect2/ld; got {}",
        stats.len()
    );
    assert_served("gcc", &stats, 1);
    let (out, _) = run_ok(&mut Command::new(&exe));
    let want: i64 = (0..300i64)
        .map(|i| {
            let a: Vec<i64> = (0..8).map(|k| i * i + k).collect();
            match i & 3 {
                0 => a[1] + i,
                1 => a[2] - i,
                _ => a[(i & 7) as usize],
            }
        })
        .sum();
    assert_eq!(out.trim(), want.to_string());
}

#[test]
fn stress_threads_cross_thread_frees_thread_exit_and_fork() {
    let exe = cc_test(
        "stress_threads",
        "stress_threads.c",
        Link::Preload,
        &["-std=gnu11", "-O2"],
    );
    for debug in ["0", "1"] {
        let (out, err) = run_ok(preloaded(&exe).env("ARENAGC_DEBUG", debug));
        assert_eq!(out.trim(), "stress_threads: ok");
        assert_served("stress_threads", &exit_stats(&err), 1);
    }
}

/// The preload library tunes glibc for the large blocks (32 MiB mmap threshold, 64 MiB trim
/// threshold: `arenagc::alloc::tune_system_allocator`), and leaves glibc alone when the
/// environment sets glibc's own thresholds.
#[test]
fn glibc_thresholds_are_tuned_unless_the_environment_sets_them() {
    let exe = cc_test(
        "glibc_policy",
        "glibc_policy.c",
        Link::Preload,
        &["-std=gnu11"],
    );
    let run = |env: &[(&str, &str)]| {
        let mut c = preloaded(&exe);
        for (k, v) in env {
            c.env(k, v);
        }
        let (out, _) = run_ok(&mut c);
        let field = |name: &str| -> usize {
            let v = out
                .split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {out:?}"));
            v.parse().unwrap()
        };
        (field("mapped="), field("keepcost="), field("mapped16="))
    };
    // Tuned: the 1 MiB and the 16 MiB block came from the heap, and the freed 2 MB stayed at its
    // top.
    let (mapped, keep, mapped16) = run(&[]);
    assert_eq!(
        mapped, 0,
        "a 1 MiB block was mapped: the mmap threshold was not raised"
    );
    assert_eq!(
        mapped16, 0,
        "a 16 MiB block was mapped: the mmap threshold is below glibc's own ceiling (32 MiB)"
    );
    assert!(
        keep >= 1 << 20,
        "glibc trimmed its heap top to {keep} bytes"
    );
    // The environment's settings win: glibc's defaults (128 KiB) apply again.
    let glibc_env: [&[(&str, &str)]; 2] = [
        &[
            ("MALLOC_MMAP_THRESHOLD_", "131072"),
            ("MALLOC_TRIM_THRESHOLD_", "131072"),
        ],
        &[(
            "GLIBC_TUNABLES",
            "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072",
        )],
    ];
    for env in glibc_env {
        let (mapped, keep, _) = run(env);
        assert_eq!(mapped, 1, "{env:?}: the 1 MiB block should be mapped");
        assert!(
            keep <= 256 << 10,
            "{env:?}: glibc kept {keep} bytes at its heap top"
        );
    }
    // Without the preload library the 1 MiB block is mapped (glibc's default).
    let (out, _) = run_ok(&mut Command::new(&exe));
    assert!(out.starts_with("mapped=1 "), "{out}");
}

/// fork under load, 1000 times, in plain and debug mode (and, in CI, the large-pools build):
/// while 4 threads allocate and free across threads and 3 use stdio (getline reallocating
/// under a FILE lock, fflush(NULL) holding stdio's list lock), and from a signal handler that
/// interrupts a fork on the same thread. Every child allocates, frees, starts a thread and
/// validates. The first deadlocked in debug mode, the second in every mode, before the fork
/// handlers stopped waiting on stdio's lock order and became re-entrant.
#[test]
fn fork_with_stdio_threads_and_from_a_signal_handler_never_hangs() {
    let exe = cc_test(
        "fork_stdio",
        "fork_stdio.c",
        Link::Preload,
        &["-std=gnu11", "-O2", "-ldl"],
    );
    for case in ["stdio", "signal"] {
        for debug in ["0", "1"] {
            let (out, _) = run_ok(preloaded(&exe).arg(case).env("ARENAGC_DEBUG", debug));
            assert!(
                out.starts_with(&format!("fork_stdio {case}: ok")),
                "{case}, debug {debug}: {out}"
            );
        }
    }
    // Tracing exactly: the tracer's tables and its stack walker's loader check are held across
    // each fork too, and a thread in `getline` (under a FILE lock) that allocates or frees must
    // not wait for them (it hung every run before `trace/pending.rs`). Each process writes its
    // report into a scratch directory.
    let dir = fresh_dir("fork_stdio_traced");
    let (out, _) = run_ok(
        preloaded(&exe)
            .arg("stdio")
            .env("ARENAGC_TRACE", "1")
            .env("ARENAGC_TRACE_FILE", dir.join("trace.%p")),
    );
    assert!(out.starts_with("fork_stdio stdio: ok"), "traced: {out}");
}

/// `ARENAGC_STATS_FILE`: every process appends its own whole table to the file, also when it
/// closed its stderr and when many run at once; `%p` gives each process a file of its own.
#[test]
fn stats_file_gets_one_whole_table_per_process_with_stderr_closed() {
    const CHILDREN: usize = 16;
    // A shell that closes its stderr and starts CHILDREN programs at once: CHILDREN + 1
    // processes load the library (each `true` is exec'd, so reads the environment anew).
    let script =
        format!("exec 2>&-; for i in $(seq {CHILDREN}); do /bin/true & done; wait; exit 0");
    let run = |file: &Path| {
        let o = Command::new("/bin/sh")
            .args(["-c", &script])
            .env("LD_PRELOAD", preload())
            .env("ARENAGC_STATS_FILE", file)
            .env_remove("ARENAGC_STATS")
            .env_remove("ARENAGC_DEBUG")
            .output()
            .expect("run sh");
        assert!(o.status.success(), "sh failed: {o:?}");
        assert!(o.stderr.is_empty(), "stderr was closed: {o:?}");
    };
    // The pid in each table's first line.
    let pids = |text: &str| -> Vec<u32> {
        text.lines()
            .filter_map(|l| l.strip_prefix("arenagc: statistics at exit (pid "))
            .map(|l| l.trim_end_matches(')').parse().expect("a pid"))
            .collect()
    };

    // One file for all: CHILDREN + 1 whole tables, from as many processes.
    let dir = fresh_dir("stats_file");
    let shared = dir.join("all.txt");
    run(&shared);
    let text = std::fs::read_to_string(&shared).expect("the stats file was written");
    let tables = exit_stats(&text);
    assert_eq!(tables.len(), CHILDREN + 1, "one table per process:\n{text}");
    let mut p = pids(&text);
    p.sort_unstable();
    p.dedup();
    assert_eq!(
        p.len(),
        CHILDREN + 1,
        "tables of distinct processes:\n{text}"
    );
    for t in text.split("arenagc: statistics at exit").skip(1) {
        // Whole: each table has its header rule and its arena rows, in one piece.
        assert_eq!(t.matches("\nclass   size").count(), 1, "a torn table:\n{t}");
        assert_eq!(
            t.matches("# arenas allocated total").count(),
            1,
            "torn:\n{t}"
        );
    }
    // The shell allocated (each `true` may not have).
    assert!(tables.iter().any(|t| t.pools > 0), "{tables:?}");

    // `%p`: a file per process, named by its pid (`%%` is a `%`).
    let dir = fresh_dir("stats_file_per_pid");
    run(&dir.join("stats.%p.100%%.txt"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    files.sort();
    assert_eq!(files.len(), CHILDREN + 1, "{files:?}");
    for f in &files {
        let text = std::fs::read_to_string(dir.join(f)).expect("read");
        let pid = pids(&text);
        assert_eq!(pid.len(), 1, "{f}: one table:\n{text}");
        assert_eq!(f, &format!("stats.{}.100%.txt", pid[0]), "named by its pid");
        assert_eq!(exit_stats(&text).len(), 1);
    }
}

/// The preload library under valgrind's tools that keep glibc's allocator (callgrind,
/// cachegrind), with the pools kept (`ARENAGC_VALGRIND=pools`, as `benches/icount` runs):
/// `malloc_usable_size` of a large block asks the system's function, not our own export of the
/// same name (which recursed until the stack overflowed).
#[test]
fn usable_size_of_a_large_block_under_callgrind_with_the_pools_kept() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("note: SKIPPED: valgrind is not installed");
        return;
    }
    let dir = fresh_dir("callgrind_usable");
    let src = dir.join("usable.c");
    std::fs::write(
        &src,
        "#include <malloc.h>\n#include <stdio.h>\n#include <stdlib.h>\n\
         int main(void) {\n  char *p = malloc(100000), *q = malloc(24);\n\
         if (!p || !q || malloc_usable_size(p) < 100000 || malloc_usable_size(q) < 24) return 1;\n\
         free(p); free(q); puts(\"usable ok\"); return 0;\n}\n",
    )
    .expect("write usable.c");
    let exe = common::cc("callgrind_usable_exe", &src, Link::Preload, &["-O1"]);
    for tool in ["callgrind", "cachegrind"] {
        let (out, err) = run_ok(
            Command::new("valgrind")
                .arg(format!("--tool={tool}"))
                .arg(format!("--{tool}-out-file=/dev/null"))
                .arg(&exe)
                .env("LD_PRELOAD", preload())
                .env("ARENAGC_VALGRIND", "pools")
                .env_remove("ARENAGC_DEBUG"),
        );
        assert!(out.contains("usable ok"), "{tool}: {out}\n{err}");
    }
}
