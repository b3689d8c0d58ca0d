//! Tracing an unmodified C program under `LD_PRELOAD` (`ARENAGC_TRACE`, `ARENAGC_TRACE_SAMPLE`,
//! `ARENAGC_TRACE_FILE`): `leaky.c`, built with `-g` and not linked to arenagc, leaks 1000
//! blocks of 48 bytes and one of 100000 from `leak_some_memory`; the report written at exit
//! names that function, its file and the sizes; the pprof profile and the folded stacks are
//! written beside it.

mod common;

use common::{Link, cc_test, preload, run_ok, scratch};
use std::path::PathBuf;
use std::process::Command;

/// A fresh empty directory under the scratch dir.
fn fresh_dir(name: &str) -> PathBuf {
    let d = scratch().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run leaky under the preload library with `env`; the report, the profile and the folded
/// stacks it wrote (the file names carry its pid).
fn run(name: &str, env: &[(&str, &str)]) -> (String, Vec<u8>, String) {
    let exe = cc_test("leaky", "leaky.c", Link::Preload, &["-std=c99"]);
    let dir = fresh_dir(name);
    let mut cmd = Command::new(&exe);
    cmd.env("LD_PRELOAD", preload())
        .env_remove("ARENAGC_DEBUG")
        .env_remove("ARENAGC_STATS")
        .env("ARENAGC_TRACE_FILE", dir.join("trace.%p"))
        .current_dir(&dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (out, err) = run_ok(&mut cmd);
    assert_eq!(out.trim(), "leaky: done");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let report = files
        .iter()
        .find(|f| f.starts_with("trace.") && f[6..].bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no report in {files:?}; stderr:\n{err}"));
    let read = |suffix: &str| std::fs::read(dir.join(format!("{report}{suffix}"))).unwrap();
    (
        String::from_utf8(read("")).unwrap(),
        read(".pb"),
        String::from_utf8(read(".folded")).unwrap(),
    )
}

#[test]
fn exact_report_names_the_leaking_function_and_sizes() {
    let (report, pb, folded) = run("exact", &[("ARENAGC_TRACE", "8")]);
    assert!(
        report.starts_with("arenagc: traced memory at exit (pid "),
        "{report}"
    );
    // The line of the 48-byte blocks: 1000 of them, in leak_some_memory, in leaky.c.
    let line = report
        .lines()
        .find(|l| l.contains("count=1000,") && l.contains("leak_some_memory"))
        .unwrap_or_else(|| panic!("no line of the 48-byte leak:\n{report}"));
    assert!(line.contains("leaky.c:"), "{line}");
    assert!(
        line.contains("size=46.9 KiB") && line.contains("average=48 B"),
        "{line}"
    );
    assert!(
        report.contains("size=97.7 KiB, count=1, average=97.7 KiB in leak_some_memory"),
        "{report}"
    );
    // The tracebacks show the caller.
    assert!(report.contains(", in main"), "{report}");
    // pprof: a protobuf starting with the first sample type.
    assert!(pb.len() > 100 && pb[0] == 0x0a, "{} bytes", pb.len());
    // Folded stacks: main calls leak_some_memory, 148000 bytes live through it.
    let stacks: u64 = folded
        .lines()
        .filter(|l| l.contains("main;leak_some_memory "))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(stacks, 148_000, "{folded}");
    assert!(!folded.contains("<0x0>"), "{folded}");
    go_pprof_reads(&pb);
}

/// The profile as `go tool pprof` reads it: the leak's function on top with its live bytes and
/// objects. Skipped, with a note, where Go is not installed, unless `ARENAGC_REQUIRE_PPROF=1`
/// (`.ci/run` installs Debian's golang-go and sets it).
fn go_pprof_reads(pb: &[u8]) {
    if Command::new("go").arg("version").output().is_err() {
        assert!(
            std::env::var_os("ARENAGC_REQUIRE_PPROF").is_none_or(|v| v != "1"),
            "go is not installed and ARENAGC_REQUIRE_PPROF=1"
        );
        eprintln!("note: SKIPPED: go is not installed (go tool pprof)");
        return;
    }
    let dir = fresh_dir("go_pprof");
    let file = dir.join("profile.pb");
    std::fs::write(&file, pb).unwrap();
    for (index, want) in [("inuse_space", "144.53kB"), ("inuse_objects", "1001")] {
        let o = Command::new("go")
            .args(["tool", "pprof", "-top"])
            .arg(format!("-sample_index={index}"))
            .arg(&file)
            .env("HOME", &dir)
            .env("GOCACHE", dir.join("gocache"))
            .output()
            .expect("run go tool pprof");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let top = out
            .lines()
            .find(|l| l.ends_with(" leak_some_memory"))
            .unwrap_or_else(|| panic!("no leak_some_memory in pprof's top:\n{out}"));
        assert!(top.trim_start().starts_with(want), "{index}: {top}\n{out}");
    }
}

#[test]
fn sampled_report_names_the_leaking_function() {
    let (report, pb, _) = run("sampled", &[("ARENAGC_TRACE_SAMPLE", "4096")]);
    assert!(
        report.contains("sampled, one sample per 4096 bytes: figures are estimates"),
        "{report}"
    );
    // The 100000-byte block is sampled with probability 1 - exp(-24) and stands for itself.
    assert!(
        report.contains("size=97.7 KiB, count=1, average=97.7 KiB in leak_some_memory"),
        "{report}"
    );
    assert!(pb[0] == 0x0a);
}

#[test]
fn a_bad_frame_count_says_so_and_traces_nothing() {
    let exe = cc_test("leaky", "leaky.c", Link::Preload, &["-std=c99"]);
    let dir = fresh_dir("bad");
    let (_, err) = run_ok(
        Command::new(&exe)
            .env("LD_PRELOAD", preload())
            .env("ARENAGC_TRACE", "0")
            .env("ARENAGC_TRACE_FILE", dir.join("trace.%p"))
            .current_dir(&dir),
    );
    assert!(
        err.contains("arenagc: ARENAGC_TRACE: the number of frames must be in range"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// `ARENAGC_TRACE_SIGNAL=USR2`: the program sends itself the signal after leaking; the report
/// of that moment (`trace.<pid>.1`, with its profile and folded stacks) names the leak, while
/// tracing goes on to the report at exit.
#[test]
fn a_signal_writes_the_report_of_that_moment_and_tracing_goes_on() {
    let exe = cc_test("leaky", "leaky.c", Link::Preload, &["-std=c99"]);
    let dir = fresh_dir("signal");
    let (out, err) = run_ok(
        Command::new(&exe)
            .args(["signal".as_ref(), dir.as_os_str()])
            .env("LD_PRELOAD", preload())
            .env_remove("ARENAGC_DEBUG")
            .env_remove("ARENAGC_STATS")
            .env("ARENAGC_TRACE", "8")
            .env("ARENAGC_TRACE_SIGNAL", "USR2")
            .env("ARENAGC_TRACE_FILE", dir.join("trace.%p"))
            .current_dir(&dir),
    );
    assert_eq!(out.trim(), "leaky: done", "{err}");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let on_signal = files
        .iter()
        .find(|f| f.ends_with(".1"))
        .unwrap_or_else(|| panic!("no report on the signal in {files:?}; stderr:\n{err}"));
    let text = std::fs::read_to_string(dir.join(on_signal)).unwrap();
    assert!(
        text.starts_with("arenagc: traced memory on signal (pid "),
        "{text}"
    );
    assert!(text.contains("in leak_some_memory"), "{text}");
    assert!(text.contains("count=1000"), "{text}");
    for suffix in [".pb", ".folded"] {
        assert!(
            files.contains(&format!("{on_signal}{suffix}")),
            "{suffix} missing: {files:?}"
        );
    }
    let at_exit = on_signal.trim_end_matches(".1");
    let text = std::fs::read_to_string(dir.join(at_exit)).unwrap();
    assert!(text.starts_with("arenagc: traced memory at exit"), "{text}");
    assert!(text.contains("in leak_some_memory"), "{text}");
}

#[test]
fn a_bad_signal_name_says_so_and_tracing_goes_on() {
    let exe = cc_test("leaky", "leaky.c", Link::Preload, &["-std=c99"]);
    let dir = fresh_dir("bad_signal");
    let (out, err) = run_ok(
        Command::new(&exe)
            .env("LD_PRELOAD", preload())
            .env_remove("ARENAGC_DEBUG")
            .env_remove("ARENAGC_STATS")
            .env("ARENAGC_TRACE", "4")
            .env("ARENAGC_TRACE_SIGNAL", "KILL")
            .env("ARENAGC_TRACE_FILE", dir.join("trace.%p"))
            .current_dir(&dir),
    );
    assert_eq!(out.trim(), "leaky: done");
    assert!(err.contains("ARENAGC_TRACE_SIGNAL: not a signal"), "{err}");
    assert!(
        std::fs::read_dir(&dir).unwrap().count() >= 3,
        "the report at exit"
    );
}
