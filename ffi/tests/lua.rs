//! A real client through the library API: Lua 5.4 (Debian's source package, fetched by
//! `ffi/lua/fetch.sh`) built against `libarenagc.so` with a `lua_Alloc` over `agc_realloc` and
//! `agc_free_sized` (`ffi/lua/agclua.c`), running the scripts of `ffi/lua/scripts` (tables,
//! strings, closures and coroutines, Lua's own collector with weak tables and finalizers, an
//! object system), in normal and in debug mode. Every allocation goes through arenagc and
//! every one is freed; the allocator validates after `lua_close`.
//!
//! Lua's own test suite (`testes`) is not in Debian's source package and lua.org is not
//! reachable from this project's machines, so the scripts are the project's. Without network
//! access to Debian's sources the test is skipped with a note, unless
//! `ARENAGC_REQUIRE_LUA=1` (set by `.ci/run` once it fetched the source).

mod common;

use common::{include_dir, libs, output, root, scratch};
use std::path::PathBuf;
use std::process::Command;

fn lua_src() -> Option<PathBuf> {
    let o = Command::new("bash")
        .arg(root().join("ffi/lua/fetch.sh"))
        .output()
        .ok()?;
    let out = String::from_utf8_lossy(&o.stdout);
    let src = PathBuf::from(out.trim());
    (o.status.success() && src.join("lua.h").exists()).then_some(src)
}

#[test]
fn lua_runs_its_workload_scripts_on_arenagc_in_normal_and_debug_mode() {
    let Some(src) = lua_src() else {
        assert!(
            std::env::var_os("ARENAGC_REQUIRE_LUA").is_none_or(|v| v != "1"),
            "the Lua source could not be fetched and ARENAGC_REQUIRE_LUA=1"
        );
        eprintln!("note: SKIPPED: Lua's source could not be fetched (ffi/lua/fetch.sh)");
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
        if name.ends_with(".c") && name != "lua.c" && name != "luac.c" {
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
