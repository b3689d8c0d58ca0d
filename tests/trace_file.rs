//! `Snapshot::dump` / `load`: a round trip keeps every trace (sizes, frames, functions), the
//! traceback limit and the sampling mean; `compare_to` between a loaded snapshot and a live
//! one names the line that grew; every truncation and a sweep of corruptions of a file give an
//! `InvalidData` error with a `FormatError` (or, for a corruption that still parses, a
//! snapshot), never a panic. One test: the tracer is process-wide.

#![cfg(feature = "trace")]

#[global_allocator]
static A: arenagc::ArenaAlloc = arenagc::ArenaAlloc;

use arenagc::trace::{self, FormatError, Snapshot};
use std::hint::black_box;
use std::io::ErrorKind;

/// A frame as plain data: file, line, function.
type FrameKey = (String, u32, Option<String>);

fn invalid(bytes: &[u8], path: &std::path::Path) -> Option<FormatError> {
    std::fs::write(path, bytes).unwrap();
    match Snapshot::load(path) {
        Ok(_) => None,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
            let inner = e.get_ref().expect("an inner error");
            let fe = inner
                .downcast_ref::<FormatError>()
                .expect("a FormatError")
                .clone();
            assert!(fe.offset <= bytes.len());
            assert!(
                e.to_string().contains("not an arenagc trace snapshot"),
                "{e}"
            );
            Some(fe)
        }
    }
}

/// Push `n` blocks of 1000 bytes, all from one line: which.
#[inline(never)]
fn push(keep: &mut Vec<Vec<u8>>, n: usize) -> u32 {
    for _ in 0..n {
        keep.push(black_box(vec![0u8; 1000]));
    }
    line!() - 2
}

#[test]
fn dump_load_compare_and_bad_files() {
    let dir = std::env::temp_dir().join(format!("arenagc-trace-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("snap.agctrace");

    trace::start(8).unwrap();
    let mut keep: Vec<Vec<u8>> = Vec::with_capacity(100);
    let line = push(&mut keep, 40);
    let old = trace::take_snapshot();
    old.dump(&path).unwrap();
    let loaded = Snapshot::load(&path).unwrap();
    assert_eq!(loaded.traceback_limit(), 8);
    assert_eq!(loaded.sample_mean(), None);
    // The same traces, frames with their functions included.
    let key = |s: &Snapshot| {
        let mut v: Vec<(usize, Vec<FrameKey>)> = s
            .traces()
            .iter()
            .map(|t| {
                let frames = t.traceback.frames().iter();
                let frames = frames.map(|f| {
                    let func = f.function().map(str::to_string);
                    (f.filename().to_string(), f.lineno(), func)
                });
                (t.size, frames.collect())
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(&loaded), key(&old));
    assert!(loaded.traces().len() >= 40);
    assert_eq!(loaded.statistics("traceback"), old.statistics("traceback"));
    let here = loaded
        .statistics("lineno")
        .into_iter()
        .find(|s| s.traceback.frames()[0].filename() == file!())
        .unwrap();
    assert_eq!(
        (here.traceback.frames()[0].lineno(), here.size),
        (line, 40_000)
    );
    assert!(
        here.traceback.frames()[0]
            .function()
            .is_some_and(|f| f.contains("trace_file::push"))
    );

    // Grow the same line; compare the live snapshot with the loaded one.
    push(&mut keep, 10);
    let new = trace::take_snapshot();
    let diff = new.compare_to(&loaded, "lineno");
    let d = diff
        .iter()
        .find(|d| d.traceback.frames()[0].filename() == file!() && d.size_diff != 0)
        .expect("a difference on this file");
    assert_eq!(d.traceback.frames()[0].lineno(), line);
    assert_eq!((d.size, d.size_diff, d.count_diff), (50_000, 10_000, 10));
    trace::stop();

    // A sampled snapshot keeps its mean (and so its estimates).
    trace::start_sampled(4096, 4).unwrap();
    let more: Vec<Vec<u8>> = (0..2000).map(|_| vec![0u8; 512]).collect();
    let sampled = trace::take_snapshot();
    trace::stop();
    sampled.dump(&path).unwrap();
    let back = Snapshot::load(&path).unwrap();
    assert_eq!(back.sample_mean(), Some(4096));
    assert_eq!(back.total(), sampled.total());
    assert!(back.total().0 > 0);
    drop(more);

    // Bad files: missing, empty, every truncation, wrong magic and version, a sweep of
    // corruptions.
    let missing = Snapshot::load(dir.join("nope")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    old.dump(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let bad = dir.join("bad");
    for n in 0..good.len() {
        let e = invalid(&good[..n], &bad).unwrap_or_else(|| panic!("prefix {n} loaded"));
        assert!(
            e.what.contains("truncated") || e.what.contains("larger than the file"),
            "prefix {n}: {e}"
        );
    }
    let mut wrong = good.clone();
    wrong[0] = b'X';
    assert!(invalid(&wrong, &bad).unwrap().what.contains("magic"));
    let mut wrong = good.clone();
    wrong[8] = 99;
    assert!(invalid(&wrong, &bad).unwrap().what.contains("version 99"));
    let mut extra = good.clone();
    extra.push(0);
    assert!(
        invalid(&extra, &bad)
            .unwrap()
            .what
            .contains("after the end")
    );
    let mut rejected = 0;
    for i in (0..good.len()).step_by(5) {
        for x in [0x01u8, 0x80, 0xFF] {
            let mut c = good.clone();
            c[i] ^= x;
            rejected += invalid(&c, &bad).is_some() as usize;
        }
    }
    assert!(rejected > 0);
    std::fs::remove_dir_all(&dir).unwrap();
    drop(keep);
}
