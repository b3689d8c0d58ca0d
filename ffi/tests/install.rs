//! `ffi/install.sh` into a temporary prefix, then a C program (`installed.c`) built against
//! what it installed, as a user builds one: with `pkg-config --cflags --libs arenagc`, and
//! with CMake's `find_package(arenagc)` (shared and static targets). Each program must run
//! without `LD_LIBRARY_PATH`. Then `--uninstall` must leave the prefix empty.
//!
//! `pkg-config` and `cmake` are not on a clean machine: `.ci/run` installs them (Debian's
//! packages) and sets `ARENAGC_REQUIRE_INSTALL_TOOLS=1`, which turns a missing tool into a
//! failure; elsewhere a missing tool skips its half of the test with a message.

mod common;

use common::{libs, output, root, run_ok, scratch, soname, tests_dir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether `tool --version` runs; if not, fail under `ARENAGC_REQUIRE_INSTALL_TOOLS=1`, else
/// say the check is skipped.
fn have(tool: &str, what: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("ARENAGC_REQUIRE_INSTALL_TOOLS").is_none_or(|v| v != "1"),
            "{tool} is missing and ARENAGC_REQUIRE_INSTALL_TOOLS=1 (install it: apt-get install -y \
             cmake pkg-config)"
        );
        eprintln!(
            "note: SKIPPED {what}: `{tool}` is not installed (apt-get install -y {tool}; \
             .ci/run installs it)"
        );
    }
    ok
}

/// The prefix `ffi/install.sh` installed into, once per test binary. It builds in the target
/// directory the other C tests use (`common::libs`), so it finds the libraries built already.
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let target = libs().parent().expect("target dir of the C libraries");
        let prefix = scratch().join("install/prefix");
        let _ = std::fs::remove_dir_all(&prefix);
        let mut cmd = Command::new("bash");
        cmd.arg(root().join("ffi/install.sh"))
            .arg("--prefix")
            .arg(&prefix)
            .arg("--target-dir")
            .arg(target);
        if cfg!(feature = "large-pools") {
            cmd.args(["--features", "large-pools"]);
        }
        if let Some(cargo) = std::env::var_os("CARGO") {
            cmd.env("CARGO", cargo);
        }
        run_ok(&mut cmd);
        prefix
    })
}

/// Run an installed program with no `LD_LIBRARY_PATH`: the library must be found through the
/// program's own RPATH.
fn run_installed(exe: &Path) -> String {
    let (out, _) = run_ok(Command::new(exe).env_remove("LD_LIBRARY_PATH"));
    assert_eq!(out.trim(), format!("installed: ok {VERSION}"), "{exe:?}");
    out
}

/// The `NEEDED` entries and the `SONAME` of an ELF file (`readelf -d`).
fn dynamic(file: &Path, tag: &str) -> Vec<String> {
    let (out, _) = run_ok(Command::new("readelf").arg("-d").arg(file));
    out.lines()
        .filter(|l| l.contains(&format!("({tag})")))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .collect()
}

#[test]
fn install_puts_every_file_in_place_stripped_and_versioned() {
    let p = prefix();
    let lib = p.join("lib");
    let real = lib.join(format!("libarenagc.so.{VERSION}"));
    for f in [
        "include/arenagc.h",
        "lib/libarenagc.a",
        "lib/libarenagc_malloc.so",
        "lib/pkgconfig/arenagc.pc",
        "lib/cmake/arenagc/arenagcConfig.cmake",
        "lib/cmake/arenagc/arenagcConfigVersion.cmake",
        "share/doc/arenagc/LICENSE-MIT",
        "share/doc/arenagc/LICENSE-APACHE",
        "share/arenagc/install-manifest.txt",
    ] {
        assert!(p.join(f).is_file(), "{f} not installed");
    }
    assert!(real.is_file(), "{real:?} not installed");
    // libarenagc.so -> libarenagc.so.MAJOR -> libarenagc.so.X.Y.Z
    let link = |name: &str| std::fs::read_link(lib.join(name)).expect("a symlink");
    assert_eq!(link("libarenagc.so"), PathBuf::from(soname()));
    assert_eq!(
        link(&soname()),
        PathBuf::from(format!("libarenagc.so.{VERSION}"))
    );
    assert_eq!(dynamic(&real, "SONAME"), [soname()]);
    // Release libraries carry no debug info.
    for f in [
        &real,
        &lib.join("libarenagc_malloc.so"),
        &lib.join("libarenagc.a"),
    ] {
        let (sections, _) = run_ok(Command::new("readelf").arg("-S").arg(f));
        assert!(!sections.contains(".debug_info"), "{f:?} has debug info");
    }
    // The header installed is the repository's.
    assert_eq!(
        std::fs::read(p.join("include/arenagc.h")).expect("read"),
        std::fs::read(root().join("include/arenagc.h")).expect("read")
    );
}

#[test]
fn a_program_built_with_pkg_config_runs_without_ld_library_path() {
    if !have("pkg-config", "the pkg-config build") {
        return;
    }
    let p = prefix();
    let pkg = |args: &[&str]| {
        let (out, _) = run_ok(
            Command::new("pkg-config")
                .args(args)
                .arg("arenagc")
                .env("PKG_CONFIG_PATH", p.join("lib/pkgconfig")),
        );
        out
    };
    assert_eq!(pkg(&["--modversion"]).trim(), VERSION);
    let flags = pkg(&["--cflags", "--libs"]);
    let exe = scratch().join("install/installed_pkg_config");
    let mut cc = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
    cc.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(tests_dir().join("installed.c"))
        .args(flags.split_whitespace());
    run_ok(&mut cc);
    assert_eq!(
        dynamic(&exe, "NEEDED")
            .iter()
            .filter(|n| **n == soname())
            .count(),
        1
    );
    run_installed(&exe);
}

#[test]
fn a_program_built_with_cmake_find_package_runs_without_ld_library_path() {
    if !have("cmake", "the CMake build") {
        return;
    }
    let p = prefix();
    let dir = scratch().join("install/cmake");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("CMakeLists.txt"),
        format!(
            "cmake_minimum_required(VERSION 3.13)\n\
             project(arenagc_user C)\n\
             if(NOT ARENAGC_WANT)\n  set(ARENAGC_WANT 0.1)\nendif()\n\
             find_package(arenagc ${{ARENAGC_WANT}} REQUIRED)\n\
             add_executable(installed_shared {src})\n\
             target_link_libraries(installed_shared PRIVATE arenagc::arenagc)\n\
             add_executable(installed_static {src})\n\
             target_link_libraries(installed_static PRIVATE arenagc::arenagc_static)\n",
            src = tests_dir().join("installed.c").display()
        ),
    )
    .expect("write CMakeLists.txt");
    let configure = |build: &str, want: &str| {
        output(
            Command::new("cmake")
                .arg("-S")
                .arg(&dir)
                .arg("-B")
                .arg(dir.join(build))
                .arg(format!("-DCMAKE_PREFIX_PATH={}", p.display()))
                .arg(format!("-DARENAGC_WANT={want}")),
        )
    };
    let o = configure("build", "0.1");
    assert!(o.status.success(), "cmake configure failed: {o:?}");
    run_ok(Command::new("cmake").arg("--build").arg(dir.join("build")));
    let shared = dir.join("build/installed_shared");
    assert_eq!(
        dynamic(&shared, "NEEDED")
            .iter()
            .filter(|n| **n == soname())
            .count(),
        1
    );
    run_installed(&shared);
    let stat = dir.join("build/installed_static");
    assert!(
        !dynamic(&stat, "NEEDED")
            .iter()
            .any(|n| n.starts_with("libarenagc")),
        "the static target links libarenagc.a"
    );
    run_installed(&stat);
    // The version file: another major version is not this package.
    let next_major = format!(
        "{}.0",
        env!("CARGO_PKG_VERSION_MAJOR").parse::<u32>().unwrap() + 1
    );
    let o = configure("build-next-major", &next_major);
    assert!(
        !o.status.success(),
        "find_package(arenagc {next_major}) accepted {VERSION}: {o:?}"
    );
}

#[test]
fn uninstall_removes_what_install_put() {
    // Its own prefix: the other tests of this binary use the shared one at the same time.
    let target = libs().parent().expect("target dir");
    let p = scratch().join("install/uninstall-prefix");
    let _ = std::fs::remove_dir_all(&p);
    let script = root().join("ffi/install.sh");
    run_ok(
        Command::new("bash")
            .arg(&script)
            .arg("--no-build")
            .arg("--prefix")
            .arg(&p)
            .arg("--target-dir")
            .arg(target),
    );
    assert!(p.join("include/arenagc.h").is_file());
    run_ok(
        Command::new("bash")
            .arg(&script)
            .arg("--uninstall")
            .arg("--prefix")
            .arg(&p),
    );
    let mut left = Vec::new();
    let mut dirs = vec![p.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let path = e.expect("entry").path();
            if path.is_dir() && !path.is_symlink() {
                dirs.push(path);
            } else {
                left.push(path);
            }
        }
    }
    assert!(left.is_empty(), "left after --uninstall: {left:?}");
}
