//! The C ABI from C: `include/arenagc.h` checked against both libraries (symbols, signatures,
//! struct layout), then the C test programs in this directory, compiled with the system C
//! compiler against the header and `libarenagc.so`, `libarenagc.a` and (under `LD_PRELOAD`)
//! `libarenagc_malloc.so`. One Rust test per C case, so a failure names the case.

mod common;

#[path = "../src/types.rs"]
#[allow(dead_code)]
mod types;

use common::{Link, cc_test, libs, output, preload, root, run_c_case, run_ok, scratch};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use types::{
    AGC_DEBUG_COLLECTABLE, AGC_DEBUG_LEAK, AGC_DEBUG_SAVEALL, AGC_DEBUG_STATS,
    AGC_DEBUG_UNCOLLECTABLE, AGC_ERR_IO, AGC_ERR_NULL, AGC_ERR_PANIC, AGC_ERR_STATE, AGC_ERR_VALUE,
    AGC_GC_GENERATIONS, AGC_GC_START, AGC_GC_STOP, AGC_NUM_ALL_CLASSES, AGC_NUM_CLASSES,
    AGC_NUM_MEDIUM_CLASSES, AGC_OK, AGC_TPFLAGS_HAVE_GC, AGC_TPFLAGS_VERSION_SHIFT,
    AGC_TYPE_VERSION_CURRENT, AGC_WEAKLIST_SIDE_TABLE, AgcClassStats, AgcGcStats, AgcGenStats,
    AgcObject, AgcStats, AgcType,
};

// ---------------------------------------------------------------------------------------------
// header vs library

fn header() -> String {
    std::fs::read_to_string(root().join("include/arenagc.h")).expect("read include/arenagc.h")
}

/// Split C type text into tokens, so `void*`, `void *` and `void  *` compare equal.
fn norm(t: &str) -> String {
    t.replace('*', " * ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// (name, return type, parameter types) of every function the header declares.
fn header_functions() -> BTreeMap<String, (String, Vec<String>)> {
    let mut m = BTreeMap::new();
    for raw in header().lines() {
        // Prototypes start in column 0; indented lines are struct members, continued
        // comments or the bodies of the header's static inline functions.
        let line = raw.trim();
        if !line.ends_with(");")
            || raw.starts_with(char::is_whitespace)
            || line.starts_with('#')
            || line.starts_with('*')
            || line.starts_with("/*")
            || line.starts_with("typedef ")
            || line.starts_with("static ")
        {
            continue;
        }
        let open = line.find('(').expect("prototype has (");
        let head = &line[..open];
        let name_at = head
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let (ret, name) = (norm(&head[..name_at]), head[name_at..].to_string());
        let params = &line[open + 1..line.len() - 2];
        let params: Vec<String> = if params.trim() == "void" {
            Vec::new()
        } else {
            c_param_types(params)
        };
        assert!(
            name.starts_with("agc_"),
            "declared function without the agc_ prefix: {name}"
        );
        assert!(
            m.insert(name.clone(), (ret, params)).is_none(),
            "{name} declared twice"
        );
    }
    m
}

/// The C type a Rust type of the exported signatures stands for.
fn c_type(rust: &str) -> String {
    let t = match rust.trim() {
        "" | "()" => "void",
        "usize" => "size_t",
        "c_int" => "int",
        "*mut c_void" => "void *",
        "*const c_void" => "const void *",
        "*const c_char" => "const char *",
        "*mut AgcStats" => "agc_stats_t *",
        "*mut libc::FILE" => "FILE *",
        "isize" => "intptr_t",
        "u64" => "uint64_t",
        "c_uint" => "unsigned int",
        "*mut usize" => "size_t *",
        "*mut AgcObject" => "agc_object *",
        "*const AgcType" => "const agc_type *",
        "*mut AgcGcStats" => "agc_gc_stats_t *",
        "*mut AgcClassStats" => "agc_class_stats_t *",
        "*mut AgcRuntime" => "agc_runtime *",
        "AgcVisitProc" | "VisitProc" => "agc_visitproc",
        "AgcWeakrefCallback" => "agc_weakref_callback",
        "AgcGcCallback" => "agc_gc_callback",
        "*mut ObjectHeader" => "agc_object *",
        "*mut core::ffi::c_void" => "void *",
        "*mut c_char" => "char *",
        "AgcTypeCountVisitor" => "agc_type_count_visitor",
        "AgcTypeGrowthVisitor" => "agc_type_growth_visitor",
        "AgcReprHook" => "agc_repr_hook",
        "AgcTraceStatVisitor" => "agc_trace_stat_visitor",
        "*mut AgcTraceSnapshot" => "agc_trace_snapshot_t *",
        "*const AgcTraceSnapshot" => "const agc_trace_snapshot_t *",
        other => panic!("no C type known for the Rust type `{other}`: extend c_type()"),
    };
    norm(t)
}

/// The types of a C parameter list (`int a, void *b`), names dropped.
fn c_param_types(params: &str) -> Vec<String> {
    params
        .split(',')
        .map(|p| {
            let toks = norm(p);
            let cut = toks.rfind(' ').expect("parameter has a name");
            toks[..cut].to_string()
        })
        .collect()
}

/// The C spelling of the types of a Rust parameter list (`a: c_int, b: *mut c_void,`).
fn rust_param_types(params: &str) -> Vec<String> {
    params
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| c_type(p.split_once(':').expect("param: type").1))
        .collect()
}

/// (return type, parameter types) of the function-pointer typedef `name` in the header.
fn header_fn_typedef(name: &str) -> (String, Vec<String>) {
    let h = header();
    let key = format!("(*{name})(");
    let at = h
        .find(&key)
        .unwrap_or_else(|| panic!("typedef {name} not in the header"));
    let start = h[..at].rfind("typedef ").expect("typedef keyword") + "typedef ".len();
    let ret = norm(&h[start..at]);
    let open = at + key.len();
    let close = open + h[open..].find(");").expect("typedef ends with );");
    (ret, c_param_types(&h[open..close]))
}

/// (return type, parameter types) of the Rust type alias `alias` (an `extern "C" fn`, maybe in
/// an `Option`) defined in `file`, in C spelling.
fn rust_fn_alias(file: &str, alias: &str) -> (String, Vec<String>) {
    let src = std::fs::read_to_string(root().join(file)).expect("read a source file");
    let key = format!("pub type {alias} =");
    let at = src
        .find(&key)
        .unwrap_or_else(|| panic!("{alias} not in {file}"));
    let def = &src[at + key.len()..];
    let def = &def[..def.find(';').expect("type alias ends with ;")];
    let open = def.find("fn(").expect("an fn type") + "fn(".len();
    let close = open + def[open..].find(')').expect("fn type has )");
    let params = rust_param_types(&def[open..close]);
    // What follows the parameters: `-> ret`, or nothing, then the `Option`'s `>` (and a comma
    // when rustfmt broke the type over lines).
    let rest =
        def[close + 1..].trim_end_matches(|c: char| c == '>' || c == ',' || c.is_whitespace());
    (c_type(rest.trim().trim_start_matches("->")), params)
}

#[test]
fn callback_typedefs_match_the_rust_function_types() {
    // The function-pointer typedefs and the Rust types the library declares them as.
    for (c, file, rust) in [
        ("agc_visitproc", "src/object/mod.rs", "VisitProc"),
        ("agc_traverseproc", "src/object/mod.rs", "TraverseProc"),
        ("agc_inquiry", "src/object/mod.rs", "InquiryProc"),
        ("agc_destructor", "src/object/mod.rs", "DestructorProc"),
        (
            "agc_weakref_callback",
            "ffi/src/types.rs",
            "AgcWeakrefCallback",
        ),
        ("agc_gc_callback", "ffi/src/types.rs", "AgcGcCallback"),
        (
            "agc_type_count_visitor",
            "ffi/src/gc_leaks.rs",
            "AgcTypeCountVisitor",
        ),
        (
            "agc_type_growth_visitor",
            "ffi/src/gc_leaks.rs",
            "AgcTypeGrowthVisitor",
        ),
        ("agc_repr_hook", "ffi/src/gc_leaks.rs", "AgcReprHook"),
        (
            "agc_trace_stat_visitor",
            "ffi/src/trace.rs",
            "AgcTraceStatVisitor",
        ),
    ] {
        assert_eq!(
            header_fn_typedef(c),
            rust_fn_alias(file, rust),
            "{c} in the header against {rust} in {file}"
        );
    }
}

/// The sources of the `agc_*` functions: every file of ffi/src but the malloc override.
fn rust_sources() -> Vec<(String, String)> {
    let dir = root().join("ffi/src");
    let mut v: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("read ffi/src")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter(|p| !p.ends_with("malloc_override.rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read a source file");
            (p.display().to_string(), text)
        })
        .collect();
    v.sort();
    assert!(v.len() >= 4, "too few sources in ffi/src: {v:?}");
    v
}

/// (name, return type, parameter types) of every `extern "C" fn agc_*` in ffi/src.
fn rust_functions() -> BTreeMap<String, (String, Vec<String>)> {
    let mut m = BTreeMap::new();
    for (file, src) in rust_sources() {
        rust_functions_of(&file, &src, &mut m);
    }
    m
}

fn rust_functions_of(file: &str, src: &str, m: &mut BTreeMap<String, (String, Vec<String>)>) {
    for piece in src.split("extern \"C\" fn ").skip(1) {
        let open = piece.find('(').expect("fn has (");
        let name = piece[..open].trim().to_string();
        if !name.starts_with("agc_") {
            continue; // test helpers and callbacks
        }
        let close = open + piece[open..].find(')').expect("fn has )");
        let body = piece[close + 1..].find('{').expect("fn has a body") + close + 1;
        let ret = piece[close + 1..body].trim().trim_start_matches("->");
        let params = rust_param_types(&piece[open + 1..close]);
        assert!(
            m.insert(name.clone(), (c_type(ret), params)).is_none(),
            "{name} defined twice (again in {file})"
        );
    }
}

fn defined_symbols(args: &[&str], file: &str) -> BTreeSet<String> {
    let path = libs().join(file);
    let (out, _) = run_ok(Command::new("nm").args(args).arg(&path));
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[1] == "T").then(|| f[2].to_string())
        })
        .collect()
}

fn prefixed(syms: &BTreeSet<String>, prefix: &str) -> BTreeSet<String> {
    syms.iter()
        .filter(|s| s.starts_with(prefix))
        .cloned()
        .collect()
}

const MALLOC_FAMILY: [&str; 13] = [
    "malloc",
    "free",
    "calloc",
    "realloc",
    "reallocarray",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
    "free_sized",
    "free_aligned_sized",
];

#[test]
fn header_declares_exactly_the_exported_symbols() {
    let declared: BTreeSet<String> = header_functions().into_keys().collect();
    assert!(
        declared.len() >= 13,
        "too few declarations parsed: {declared:?}"
    );
    let shared = defined_symbols(&["-D", "--defined-only"], "libarenagc.so");
    let stat = defined_symbols(&["--defined-only"], "libarenagc.a");
    let malloc = defined_symbols(&["-D", "--defined-only"], "libarenagc_malloc.so");
    assert_eq!(
        prefixed(&shared, "agc_"),
        declared,
        "libarenagc.so exports vs header"
    );
    assert_eq!(
        prefixed(&stat, "agc_"),
        declared,
        "libarenagc.a defines vs header"
    );
    assert_eq!(
        prefixed(&malloc, "agc_"),
        declared,
        "libarenagc_malloc.so exports vs header"
    );
    for f in MALLOC_FAMILY {
        assert!(
            malloc.contains(f),
            "libarenagc_malloc.so does not export {f}"
        );
        assert!(!shared.contains(f), "libarenagc.so must not replace {f}");
    }
}

#[test]
fn header_signatures_match_the_rust_definitions() {
    let c = header_functions();
    let rust = rust_functions();
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        rust.keys().collect::<Vec<_>>(),
        "function names"
    );
    for (name, sig) in &c {
        assert_eq!(
            sig, &rust[name],
            "signature of {name}: header (left) vs ffi/src/lib.rs (right)"
        );
    }
}

#[test]
fn header_check_c_takes_every_declared_function_and_inlines_are_not_exported() {
    let src = std::fs::read_to_string(common::tests_dir().join("header_check.c"))
        .expect("read header_check.c");
    let taken: BTreeSet<String> = src
        .lines()
        .filter_map(|l| l.strip_prefix("FN("))
        .map(|rest| {
            rest.split(',')
                .nth(1)
                .expect("FN(ret, name, args)")
                .trim()
                .to_string()
        })
        .collect();
    let declared: BTreeSet<String> = header_functions().into_keys().collect();
    assert_eq!(
        taken, declared,
        "FN(...) lines of header_check.c vs the header"
    );
    // The inline reference-count functions live in the header only.
    let inline: BTreeSet<String> = header()
        .lines()
        .filter_map(|l| l.strip_prefix("static inline "))
        .map(|l| {
            let head = &l[..l.find('(').expect("(")];
            let at = head
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            head[at..].to_string()
        })
        .collect();
    let want: BTreeSet<String> = [
        "agc_incref",
        "agc_decref",
        "agc_xdecref",
        "agc_newref",
        "agc_xnewref",
    ]
    .map(String::from)
    .into();
    assert_eq!(inline, want, "static inline functions of the header");
    let shared = defined_symbols(&["-D", "--defined-only"], "libarenagc.so");
    assert!(
        inline.is_disjoint(&shared),
        "an inline function is also exported"
    );
}

/// What the Rust side says header_check.c must print.
fn rust_layout() -> BTreeMap<String, String> {
    use std::mem::{align_of, offset_of, size_of};
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| m.insert(k.to_string(), v);
    put("version", env!("CARGO_PKG_VERSION").to_string());
    // The numeric version macros: this package's version, and MAJOR * 10^6 + MINOR * 10^3 +
    // PATCH.
    let part = |s: &str| s.parse::<u64>().expect("a version number");
    let (major, minor, patch) = (
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    );
    assert!(
        minor < 1000 && patch < 1000,
        "AGC_VERSION_NUMBER has 3 digits each"
    );
    put("const AGC_VERSION_MAJOR", major.to_string());
    put("const AGC_VERSION_MINOR", minor.to_string());
    put("const AGC_VERSION_PATCH", patch.to_string());
    put(
        "const AGC_VERSION_NUMBER",
        (major * 1_000_000 + minor * 1000 + patch).to_string(),
    );
    put("const AGC_NUM_CLASSES", AGC_NUM_CLASSES.to_string());
    put(
        "const AGC_NUM_MEDIUM_CLASSES",
        AGC_NUM_MEDIUM_CLASSES.to_string(),
    );
    put("const AGC_NUM_ALL_CLASSES", AGC_NUM_ALL_CLASSES.to_string());
    put(
        "const AGC_TPFLAGS_VERSION_SHIFT",
        AGC_TPFLAGS_VERSION_SHIFT.to_string(),
    );
    put(
        "const AGC_TYPE_VERSION_CURRENT",
        AGC_TYPE_VERSION_CURRENT.to_string(),
    );
    put("const AGC_OK", AGC_OK.to_string());
    put("const AGC_ERR_NULL", AGC_ERR_NULL.to_string());
    put("const AGC_ERR_IO", AGC_ERR_IO.to_string());
    put("const AGC_ERR_PANIC", AGC_ERR_PANIC.to_string());
    put(
        "size agc_class_stats_t",
        size_of::<AgcClassStats>().to_string(),
    );
    put(
        "align agc_class_stats_t",
        align_of::<AgcClassStats>().to_string(),
    );
    macro_rules! off {
        ($c:literal, $t:ty, $($f:ident),*) => {
            $(put(concat!("offset ", $c, ".", stringify!($f)), offset_of!($t, $f).to_string());)*
        };
    }
    off!(
        "agc_class_stats_t",
        AgcClassStats,
        block_size,
        pools,
        blocks_in_use,
        blocks_free
    );
    put("size agc_stats_t", size_of::<AgcStats>().to_string());
    put("align agc_stats_t", align_of::<AgcStats>().to_string());
    off!(
        "agc_stats_t",
        AgcStats,
        classes,
        arenas_allocated_total,
        arenas_released_total,
        arenas_current,
        arenas_peak,
        arenas_free,
        pools_free,
        large_bytes,
        large_blocks,
        debug
    );
    for (k, v) in [
        ("AGC_ERR_VALUE", AGC_ERR_VALUE.to_string()),
        ("AGC_ERR_STATE", AGC_ERR_STATE.to_string()),
        ("AGC_TPFLAGS_HAVE_GC", AGC_TPFLAGS_HAVE_GC.to_string()),
        (
            "AGC_WEAKLIST_SIDE_TABLE",
            AGC_WEAKLIST_SIDE_TABLE.to_string(),
        ),
        ("AGC_GC_GENERATIONS", AGC_GC_GENERATIONS.to_string()),
        ("AGC_GC_START", AGC_GC_START.to_string()),
        ("AGC_GC_STOP", AGC_GC_STOP.to_string()),
        ("AGC_DEBUG_STATS", AGC_DEBUG_STATS.to_string()),
        ("AGC_DEBUG_COLLECTABLE", AGC_DEBUG_COLLECTABLE.to_string()),
        (
            "AGC_DEBUG_UNCOLLECTABLE",
            AGC_DEBUG_UNCOLLECTABLE.to_string(),
        ),
        ("AGC_DEBUG_SAVEALL", AGC_DEBUG_SAVEALL.to_string()),
        ("AGC_DEBUG_LEAK", AGC_DEBUG_LEAK.to_string()),
    ] {
        put(&format!("const {k}"), v);
    }
    // agc_object is the core's ObjectHeader and agc_type its TypeObject, unchanged.
    put("size agc_object", size_of::<AgcObject>().to_string());
    put("align agc_object", align_of::<AgcObject>().to_string());
    put(
        "offset agc_object.refcnt",
        offset_of!(AgcObject, refcnt).to_string(),
    );
    put(
        "offset agc_object.type",
        offset_of!(AgcObject, ty).to_string(),
    );
    put("size agc_type", size_of::<AgcType>().to_string());
    put("align agc_type", align_of::<AgcType>().to_string());
    off!(
        "agc_type",
        AgcType,
        name,
        basic_size,
        flags,
        weaklist_offset,
        traverse,
        clear,
        finalize,
        del,
        dealloc,
        item_size
    );
    put("size agc_gen_stats_t", size_of::<AgcGenStats>().to_string());
    put(
        "align agc_gen_stats_t",
        align_of::<AgcGenStats>().to_string(),
    );
    off!(
        "agc_gen_stats_t",
        AgcGenStats,
        collections,
        collected,
        uncollectable
    );
    put("size agc_gc_stats_t", size_of::<AgcGcStats>().to_string());
    put("align agc_gc_stats_t", align_of::<AgcGcStats>().to_string());
    off!("agc_gc_stats_t", AgcGcStats, generations);
    m
}

fn c_layout(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("key value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn header_struct_layout_and_constants_match_rust_in_c99_and_static() {
    let want = rust_layout();
    for (name, link) in [
        ("header_check_c99_shared", Link::Shared),
        ("header_check_c99_static", Link::Static),
    ] {
        let exe = cc_test(name, "header_check.c", link, &["-std=c99", "-pedantic"]);
        let (out, _) = run_ok(&mut Command::new(exe));
        assert_eq!(c_layout(&out), want, "{name}: C (left) vs Rust (right)");
    }
}

fn have_cxx() -> bool {
    Command::new("g++")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn header_is_cplusplus_friendly() {
    let h = header();
    let guard_open = h
        .find("#ifdef __cplusplus\nextern \"C\" {")
        .expect("extern \"C\" { guard");
    let guard_close = h
        .rfind("#ifdef __cplusplus\n} /* extern \"C\" */")
        .expect("closing guard");
    let first_decl = h.find("void *agc_malloc").expect("agc_malloc declared");
    assert!(guard_open < first_decl && first_decl < guard_close);
    // Compile and link it as C++ where the machine has a C++ compiler (the CI image may not).
    if have_cxx() {
        let exe = cc_test(
            "header_check_cxx",
            "header_check.c",
            Link::Shared,
            &["-x", "c++", "-std=c++11", "-pedantic"],
        );
        let (out, _) = run_ok(&mut Command::new(exe));
        assert_eq!(c_layout(&out), rust_layout(), "C++ (left) vs Rust (right)");
    } else {
        eprintln!("note: no g++ here; the header was checked for its extern \"C\" guards only");
    }
}

// ---------------------------------------------------------------------------------------------
// agc_* from C: api.c, shared and static, normal and debug mode

fn api(case: &str) {
    run_c_case("api", case, &["-std=c99", "-fno-builtin"]);
}

c_tests! { api;
    agc_version_matches_header => "version",
    agc_malloc_zero_gives_distinct_live_pointers => "malloc_zero_distinct",
    agc_malloc_every_size_usable_and_aligned => "sizes",
    agc_calloc_zeroes_and_catches_overflow => "calloc",
    agc_huge_sizes_give_null_and_enomem => "huge",
    agc_realloc_keeps_contents_and_zero_frees => "realloc",
    agc_aligned_alloc_every_alignment_every_class_and_bad_alignments => "aligned",
    agc_free_null_does_nothing => "free_null",
    agc_stats_counts_blocks => "stats",
    agc_stats_print_prints_and_reports_errors => "stats_print",
    agc_trim_gives_pools_back => "trim",
    agc_owns_tells_arena_pointers => "owns",
    agc_cross_thread_free_and_per_thread_last_error => "threads",
}

// ---------------------------------------------------------------------------------------------
// the malloc family of libarenagc_malloc.so under LD_PRELOAD: family.c

fn family_exe() -> std::path::PathBuf {
    cc_test(
        "family",
        "family.c",
        Link::Preload,
        &["-std=gnu11", "-fno-builtin", "-Wno-alloc-size-larger-than"],
    )
}

fn family(case: &str) {
    let exe = family_exe();
    for debug in ["0", "1"] {
        let (out, _) = run_ok(
            Command::new(&exe)
                .arg(case)
                .env("LD_PRELOAD", preload())
                .env("ARENAGC_DEBUG", debug),
        );
        assert_eq!(out.trim(), "family: ok");
    }
}

/// Under an address-space limit (`ulimit -v`, RLIMIT_AS) of 512 MiB, the preloaded library's
/// reserved tables still leave room: every size still allocates. A kind map over all 47 bits of
/// address space (512 MiB reserved) made `malloc` fail here.
#[test]
fn preload_sizes_under_a_512_mib_address_space_limit() {
    let exe = family_exe();
    for debug in ["0", "1"] {
        let (out, _) = run_ok(
            Command::new("sh")
                .args(["-c", "ulimit -v 524288 && exec \"$0\" \"$@\""])
                .arg(&exe)
                .arg("sizes_and_realloc")
                .env("LD_PRELOAD", preload())
                .env("ARENAGC_DEBUG", debug),
        );
        assert_eq!(out.trim(), "family: ok", "ARENAGC_DEBUG={debug}");
    }
}

c_tests! { family;
    preload_malloc_is_arenagc => "is_ours",
    preload_malloc_zero_gives_distinct_live_pointers => "malloc_zero",
    preload_huge_sizes_give_null_and_enomem_for_every_function => "huge",
    preload_calloc_and_reallocarray_overflow_keep_the_old_block => "overflow",
    preload_posix_memalign_bad_alignment_is_einval_and_untouched => "posix_memalign",
    preload_aligned_alloc_every_alignment_and_non_power_of_two_fails => "aligned_alloc",
    preload_memalign_follows_glibc_rules => "memalign_rules",
    preload_valloc_and_pvalloc_are_page_aligned => "valloc",
    preload_realloc_to_zero_frees_and_returns_null => "realloc_zero",
    preload_free_null_does_nothing => "free_null",
    preload_sizes_realloc_calloc_free_sized => "sizes_and_realloc",
}

// ---------------------------------------------------------------------------------------------
// bad frees abort with a message naming the fault: abort.c in a child process

/// Run abort.c's `case` through agc_free (libarenagc.so) and through free (LD_PRELOAD), and
/// check that each dies of SIGABRT with one of `messages` on stderr.
fn aborts(case: &str, debug: bool, messages: &[&str]) {
    use std::os::unix::process::ExitStatusExt;
    let agc = cc_test(
        "abort_agc",
        "abort.c",
        Link::Shared,
        &["-std=gnu11", "-fno-builtin", "-DUSE_AGC"],
    );
    let plain = cc_test(
        "abort_libc",
        "abort.c",
        Link::Preload,
        &["-std=gnu11", "-fno-builtin"],
    );
    let debug = if debug { "1" } else { "0" };
    let mut via_agc = Command::new(agc);
    let mut via_free = Command::new(plain);
    via_free.env("LD_PRELOAD", preload());
    for cmd in [&mut via_agc, &mut via_free] {
        let o = output(cmd.arg(case).env("ARENAGC_DEBUG", debug));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGABRT),
            "{cmd:?}: not aborted ({}); stderr:\n{err}",
            o.status
        );
        assert!(
            messages.iter().any(|m| err.contains(m)),
            "{cmd:?}: stderr names no expected fault {messages:?}:\n{err}"
        );
    }
}

#[test]
fn free_of_interior_pointer_aborts() {
    aborts("interior", false, &["arenagc: fatal error: invalid free"]);
}

/// A free of a pointer outside every arena: glibc's own check catches it; debug mode checks it
/// itself.
fn foreign_free_aborts(case: &str) {
    aborts(
        case,
        false,
        &["free(): invalid pointer", "free(): invalid size"],
    );
    aborts(
        case,
        true,
        &[
            "arenagc: fatal error: underflow",
            "arenagc: fatal error: pointer not from this allocator",
        ],
    );
}

#[test]
fn free_of_stack_pointer_aborts() {
    foreign_free_aborts("stack");
}

#[test]
fn free_of_static_pointer_aborts() {
    foreign_free_aborts("static");
}

#[test]
fn double_free_aborts_in_default_and_debug_mode() {
    aborts("double", false, &["arenagc: fatal error: double free"]);
    aborts("double", true, &["arenagc: fatal error: double free"]);
}

#[test]
fn double_free_of_a_large_block_aborts() {
    aborts(
        "double_large",
        false,
        &["double free", "free(): invalid pointer"],
    );
    aborts("double_large", true, &["arenagc: fatal error: double free"]);
}

/// Debug mode with tracing on (`ARENAGC_TRACE`): the fault's message is followed by where the
/// block was allocated and where it was freed, at the C program's own lines.
#[test]
fn debug_mode_with_tracing_names_where_a_double_freed_block_was_allocated_and_freed() {
    let exe = cc_test(
        "abort_libc",
        "abort.c",
        Link::Preload,
        &["-std=gnu11", "-fno-builtin"],
    );
    let o = output(
        Command::new(exe)
            .arg("double")
            .env("LD_PRELOAD", preload())
            .env("ARENAGC_DEBUG", "1")
            .env("ARENAGC_TRACE", "4")
            .env("ARENAGC_TRACE_FILE", scratch().join("debug-trace.%p")),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    let allocated = err.find("Memory block allocated at (most recent call first):");
    let freed = err.find("Memory block freed at (most recent call first):");
    let (Some(a), Some(f)) = (allocated, freed) else {
        panic!("no allocation or free traceback after the fault:\n{err}");
    };
    assert!(
        err.contains("arenagc: fatal error: double free") && a < f,
        "stderr:\n{err}"
    );
    // abort.c: `ALLOC(48)` on line 34, the first `FREE(p)` on line 35, both in main.
    assert!(
        err[a..f].contains("abort.c\", line 34, in main"),
        "allocation traceback:\n{err}"
    );
    assert!(
        err[f..].contains("abort.c\", line 35, in main"),
        "free traceback:\n{err}"
    );
}

#[test]
fn double_free_after_other_frees_aborts_in_debug_mode() {
    aborts("double_later", true, &["arenagc: fatal error: double free"]);
}
