//! A real client through the library API: Lua 5.4.8 (its source and its own test suite, fetched
//! from PyPI by `ffi/lua/fetch.sh`) built against `libarenagc.so`.
//!
//! - `agclua` (`ffi/lua/agclua.c`): a `lua_Alloc` over `agc_realloc` and `agc_free_sized`, running
//!   the scripts of `ffi/lua/scripts` (tables, strings, closures and coroutines, Lua's own
//!   collector with weak tables and finalizers, an object system); every allocation is freed and
//!   the allocator validates after `lua_close`.
//! - Lua's standalone interpreter (`lua.c`) with `luaL_newstate`'s allocator over `agc_realloc`
//!   and `agc_free` (lauxlib.c built with `-Drealloc=agc_realloc -Dfree=agc_free`), running Lua's
//!   own test suite, `testes/all.lua`, in user mode (`_U=true`: the tests that do not need Lua's
//!   internal test library).
//!
//! Both in normal and in debug mode. Without network access to PyPI the tests are skipped with a
//! note, unless `ARENAGC_REQUIRE_LUA=1` (set by `.ci/run` once it fetched the source).

mod common;

use common::{include_dir, libs, output, root, scratch};
use std::path::PathBuf;
use std::process::Command;

fn lua_src() -> Option<PathBuf> {
    static SRC: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    SRC.get_or_init(fetch).clone()
}

fn fetch() -> Option<PathBuf> {
    let o = Command::new("bash")
        .arg(root().join("ffi/lua/fetch.sh"))
        .output()
        .ok()?;
    let out = String::from_utf8_lossy(&o.stdout);
    let src = PathBuf::from(out.trim());
    (o.status.success() && src.join("lua.h").exists()).then_some(src)
}

/// The source files that are not part of the Lua library: the two programs, the one-file build
/// and the internal test library.
const NOT_LIBRARY: [&str; 4] = ["lua.c", "luac.c", "onelua.c", "ltests.c"];

/// The source directory, or None (after a note) when it could not be fetched and that is
/// allowed.
fn lua_src_or_skip() -> Option<PathBuf> {
    let src = lua_src();
    if src.is_none() {
        assert!(
            std::env::var_os("ARENAGC_REQUIRE_LUA").is_none_or(|v| v != "1"),
            "the Lua source could not be fetched and ARENAGC_REQUIRE_LUA=1"
        );
        eprintln!("note: SKIPPED: Lua's source could not be fetched (ffi/lua/fetch.sh)");
    }
    src
}

#[test]
fn lua_runs_its_workload_scripts_on_arenagc_in_normal_and_debug_mode() {
    let Some(src) = lua_src_or_skip() else {
        return;
    };
    let libs = libs();
    let exe = scratch().join("agclua");
    let mut cc = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
    cc.args(["-O2", "-std=gnu99", "-DLUA_USE_LINUX", "-w"])
        .arg("-I")
        .arg(&src)
        .arg("-I")
        .arg(include_dir())
        .arg(root().join("ffi/lua/agclua.c"));
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".c") && !NOT_LIBRARY.contains(&name.as_str()) {
            cc.arg(p);
        }
    }
    cc.arg("-L")
        .arg(libs)
        .args(["-larenagc", "-Wl,--disable-new-dtags"])
        .arg(format!("-Wl,-rpath,{}", libs.display()))
        .args(["-lm", "-ldl", "-o"])
        .arg(&exe);
    let o = output(&mut cc);
    assert!(
        o.status.success(),
        "building Lua failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(root().join("ffi/lua/scripts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 5);
    for debug in ["0", "1"] {
        let o = output(
            Command::new(&exe)
                .args(&scripts)
                .env("ARENAGC_DEBUG", debug)
                .current_dir(root()),
        );
        let (so, se) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(
            o.status.success(),
            "agclua (debug {debug}) failed:\n{so}\n{se}"
        );
        assert_eq!(
            so.lines().filter(|l| l.ends_with(" ok")).count(),
            scripts.len(),
            "{so}"
        );
        assert!(so.contains("all freed; pool blocks in use"), "{so}");
    }
}

/// Lua's own test suite on Lua's own interpreter, every allocation of which goes through
/// `agc_realloc` / `agc_free`.
#[test]
fn lua_passes_its_own_test_suite_on_arenagc_in_normal_and_debug_mode() {
    let Some(src) = lua_src_or_skip() else {
        return;
    };
    let libs = libs();
    let objs = scratch().join("lua-testes-objs");
    let _ = std::fs::remove_dir_all(&objs);
    std::fs::create_dir_all(&objs).unwrap();
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let mut link = Command::new(&cc);
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".c") || ["luac.c", "onelua.c", "ltests.c"].contains(&name.as_str()) {
            continue;
        }
        let obj = objs.join(name.replace(".c", ".o"));
        let mut c = Command::new(&cc);
        c.args(["-O2", "-std=gnu99", "-DLUA_USE_LINUX", "-w", "-c"])
            .arg("-I")
            .arg(&src);
        if name == "lauxlib.c" {
            // luaL_newstate's allocator (l_alloc) calls realloc and free, and nothing else in
            // this file does: both become arenagc's.
            c.arg("-include")
                .arg(include_dir().join("arenagc.h"))
                .args(["-Drealloc=agc_realloc", "-Dfree=agc_free"]);
        }
        let o = output(c.arg(&p).arg("-o").arg(&obj));
        assert!(
            o.status.success(),
            "compiling {name} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        link.arg(obj);
    }
    let exe = scratch().join("lua-on-arenagc");
    link.arg("-L")
        .arg(libs)
        .args(["-larenagc", "-Wl,--disable-new-dtags"])
        .arg(format!("-Wl,-rpath,{}", libs.display()))
        .args(["-lm", "-ldl", "-Wl,-E", "-o"])
        .arg(&exe);
    let o = output(&mut link);
    assert!(
        o.status.success(),
        "linking Lua failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The interpreter's allocations are arenagc's: its allocator calls agc_realloc and agc_free.
    let nm = output(Command::new("nm").arg("-u").arg(&exe));
    let undefined = String::from_utf8_lossy(&nm.stdout);
    assert!(
        undefined.contains("agc_realloc") && undefined.contains("agc_free"),
        "{undefined}"
    );
    for debug in ["0", "1"] {
        let o = output(
            Command::new(&exe)
                .args(["-e", "_U=true", "all.lua"])
                .env("ARENAGC_DEBUG", debug)
                .current_dir(src.join("testes")),
        );
        let (so, se) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(
            o.status.success() && so.contains("final OK !!!"),
            "Lua's test suite (debug {debug}) failed:\n{so}\n{se}"
        );
    }
}
