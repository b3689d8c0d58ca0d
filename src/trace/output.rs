//! Output that standard tools draw: a heap profile in pprof's `profile.proto` format
//! (`pprof`, `go tool pprof`), folded stacks (`root;caller;callee bytes`, for `flamegraph.pl`,
//! `inferno-flamegraph`, speedscope) and, with the cargo feature `flamegraph`, an SVG flame
//! graph of live memory drawn by the `inferno` crate.
//!
//! ```text
//!  Profile  1 sample_type: alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes
//!           2 sample: one per traceback   1 location_id (leaf first, packed)   2 value (packed)
//!           4 location: one per frame     1 id   4 line { 1 function_id   2 line }
//!           5 function: one per (name, file)   1 id   2 name   3 system_name   4 filename
//!           6 string_table ("" first)   11 period_type space/bytes   12 period   13 comment
//!           14 default_sample_type = inuse_space
//! ```
//!
//! A snapshot holds live blocks only: its `alloc_*` values equal its `inuse_*` values (pprof's
//! heap profiles have both; the `alloc_*` pair is written so tools that expect it find it). In
//! sampled mode every value is the estimate (the sum of the weights, rounded per sample), and
//! `period` is the sampling mean. The protobuf encoder is the few lines below (varints and
//! length-delimited fields); the profile is not compressed (both pprofs read it as is).
//!
//! Invariant: the writers mark the thread busy in tracer code, so their buffers are not traced.

use std::collections::HashMap;
use std::io::{self, Write};

use super::frames::{Frame, Traceback};
use super::hook;
use super::sample;
use super::snapshot::Snapshot;

/// Append `v` as a protobuf varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint field (wire type 0).
fn field_varint(out: &mut Vec<u8>, field: u32, v: u64) {
    varint(out, (field as u64) << 3);
    varint(out, v);
}

/// A length-delimited field (wire type 2): bytes, a string, a message, a packed list.
fn field_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, ((field as u64) << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A packed repeated varint field.
fn field_packed(out: &mut Vec<u8>, field: u32, values: impl Iterator<Item = u64>) {
    let mut body = Vec::new();
    for v in values {
        varint(&mut body, v);
    }
    field_bytes(out, field, &body);
}

/// The strings of a profile, each stored once (index 0 is "").
struct Strings<'a> {
    ids: HashMap<&'a str, u64>,
    list: Vec<&'a str>,
}

impl<'a> Strings<'a> {
    fn new() -> Strings<'a> {
        let mut s = Strings {
            ids: HashMap::new(),
            list: Vec::new(),
        };
        s.id("");
        s
    }

    fn id(&mut self, s: &'a str) -> u64 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        self.list.push(s);
        let i = (self.list.len() - 1) as u64;
        self.ids.insert(s, i);
        i
    }
}

/// A `ValueType` message.
fn value_type(strings: &mut Strings<'_>, ty: &'static str, unit: &'static str) -> Vec<u8> {
    let mut m = Vec::new();
    field_varint(&mut m, 1, strings.id(ty));
    field_varint(&mut m, 2, strings.id(unit));
    m
}

/// Each traceback of the snapshot with its (estimated) bytes and blocks, in a stable order
/// (biggest first).
fn by_traceback(snap: &Snapshot) -> Vec<(&Traceback, u64, u64)> {
    let mean = snap.sample_mean().unwrap_or(0);
    let mut groups: HashMap<&Traceback, (f64, f64)> = HashMap::new();
    for t in snap.traces() {
        let g = groups.entry(&t.traceback).or_insert((0.0, 0.0));
        g.0 += sample::weigh(t.size, mean) as f64;
        g.1 += snap.weight(t.size);
    }
    let mut out: Vec<(&Traceback, u64, u64)> = groups
        .into_iter()
        .map(|(tb, (bytes, count))| (tb, bytes.round() as u64, count.round() as u64))
        .collect();
    out.sort_by(|a, b| (b.1, b.2, b.0).cmp(&(a.1, a.2, a.0)));
    out
}

/// A frame's name in a profile: its function, or its file and line when unknown.
fn frame_name(f: &Frame) -> String {
    match f.function() {
        Some(name) => name.to_string(),
        None => format!("{}:{}", f.filename(), f.lineno()),
    }
}

/// The pprof profile of `snap` (see the module docs).
pub(crate) fn pprof(snap: &Snapshot) -> Vec<u8> {
    let groups = by_traceback(snap);
    let names: HashMap<&Frame, String> = groups
        .iter()
        .flat_map(|g| g.0.frames())
        .map(|f| (f, frame_name(f)))
        .collect();
    let mut strings = Strings::new();
    let mut out = Vec::new();
    for (ty, unit) in [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ] {
        let m = value_type(&mut strings, ty, unit);
        field_bytes(&mut out, 1, &m);
    }
    let mut functions: HashMap<(&str, &str), u64> = HashMap::new();
    let mut function_msgs = Vec::new();
    let mut locations: HashMap<(&str, u32, &str), u64> = HashMap::new();
    let mut location_msgs = Vec::new();
    for (tb, bytes, count) in &groups {
        let mut ids = Vec::with_capacity(tb.frames().len());
        for f in tb.frames() {
            let name = names[f].as_str();
            let fkey = (name, f.filename());
            let next = functions.len() as u64 + 1;
            let fid = *functions.entry(fkey).or_insert_with(|| {
                let mut m = Vec::new();
                field_varint(&mut m, 1, next);
                field_varint(&mut m, 2, strings.id(name));
                field_varint(&mut m, 3, strings.id(name));
                field_varint(&mut m, 4, strings.id(f.filename()));
                function_msgs.push(m);
                next
            });
            let next = locations.len() as u64 + 1;
            let lid = *locations
                .entry((f.filename(), f.lineno(), name))
                .or_insert_with(|| {
                    let mut line = Vec::new();
                    field_varint(&mut line, 1, fid);
                    field_varint(&mut line, 2, f.lineno() as u64);
                    let mut m = Vec::new();
                    field_varint(&mut m, 1, next);
                    field_bytes(&mut m, 4, &line);
                    location_msgs.push(m);
                    next
                });
            ids.push(lid);
        }
        let mut m = Vec::new();
        field_packed(&mut m, 1, ids.into_iter());
        field_packed(&mut m, 2, [*count, *bytes, *count, *bytes].into_iter());
        field_bytes(&mut out, 2, &m);
    }
    for m in &location_msgs {
        field_bytes(&mut out, 4, m);
    }
    for m in &function_msgs {
        field_bytes(&mut out, 5, m);
    }
    let period_type = value_type(&mut strings, "space", "bytes");
    let comment = strings.id(match snap.sample_mean() {
        Some(_) => "arenagc trace snapshot, sampled: values are estimates; alloc_* = inuse_*",
        None => "arenagc trace snapshot: live blocks; alloc_* = inuse_*",
    });
    let default_type = strings.id("inuse_space");
    for s in &strings.list {
        field_bytes(&mut out, 6, s.as_bytes());
    }
    field_bytes(&mut out, 11, &period_type);
    field_varint(&mut out, 12, snap.sample_mean().unwrap_or(1) as u64);
    field_varint(&mut out, 13, comment);
    field_varint(&mut out, 14, default_type);
    out
}

/// The folded stacks of `snap`: one line per traceback, oldest frame first.
pub(crate) fn folded(snap: &Snapshot) -> String {
    let mut text = String::new();
    for (tb, bytes, _) in by_traceback(snap) {
        if bytes == 0 {
            continue;
        }
        for (i, f) in tb.frames().iter().rev().enumerate() {
            if i > 0 {
                text.push(';');
            }
            // A `;` separates frames and a newline ends the line: neither may be in a name
            // (Rust's array types have `;`).
            let name = frame_name(f).replace([';', '\n'], ",");
            text.push_str(&name);
        }
        text.push(' ');
        text.push_str(&bytes.to_string());
        text.push('\n');
    }
    text
}

impl Snapshot {
    /// Write the snapshot as a pprof heap profile (`profile.proto`, uncompressed) to `w`:
    /// sample types `alloc_objects`, `alloc_space`, `inuse_objects`, `inuse_space` (the
    /// default), one sample per traceback, functions and lines from the symbolised frames. A
    /// snapshot holds live blocks, so `alloc_*` equals `inuse_*`; in sampled mode the values
    /// are estimates. Read it with `pprof -top file` or `go tool pprof -http=: file`.
    pub fn write_pprof(&self, mut w: impl Write) -> io::Result<()> {
        let _busy = hook::enter();
        w.write_all(&pprof(self))
    }

    /// Write the snapshot as folded stacks to `w`: per traceback a line `root;caller;callee
    /// bytes` (frames named by function, or `file:line` when unknown; estimates in sampled
    /// mode), the input of `flamegraph.pl`, `inferno-flamegraph` and speedscope.
    pub fn write_folded(&self, mut w: impl Write) -> io::Result<()> {
        let _busy = hook::enter();
        w.write_all(folded(self).as_bytes())
    }

    /// Write an SVG flame graph of the snapshot's live memory by call stack to `w`, drawn by
    /// the `inferno` crate from [`write_folded`](Self::write_folded)'s stacks (cargo feature
    /// `flamegraph`).
    #[cfg(feature = "flamegraph")]
    pub fn write_flamegraph(&self, w: impl Write) -> io::Result<()> {
        let _busy = hook::enter();
        let text = folded(self);
        let mut opt = inferno::flamegraph::Options::default();
        opt.title = "arenagc: live memory by call stack".to_string();
        opt.count_name = "bytes".to_string();
        if text.is_empty() {
            // inferno refuses a profile without stacks: say so in a small SVG of our own.
            let mut w = w;
            return w.write_all(
                b"<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" \
                  width=\"1200\" height=\"60\" xmlns=\"http://www.w3.org/2000/svg\">\
                  <text x=\"600\" y=\"30\" text-anchor=\"middle\">arenagc: no traced memory \
                  in this snapshot</text></svg>\n",
            );
        }
        inferno::flamegraph::from_lines(&mut opt, text.lines(), w)
    }
}
