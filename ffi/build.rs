//! Gives `libarenagc.so` its SONAME, `libarenagc.so.MAJOR` (`MAJOR` = this package's major
//! version), so a program linked with `-larenagc` records the ABI it was built for and a later
//! release with the same MAJOR replaces the library under it (the ABI policy: `ffi/README.md`).
//! `ffi/install.sh` installs `libarenagc.so.MAJOR.MINOR.PATCH` with the `libarenagc.so.MAJOR`
//! and `libarenagc.so` links; in a cargo target directory only `libarenagc.so` exists, so a
//! program run from there needs the `libarenagc.so.MAJOR` link next to it (the tests make it).

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    // Only the cdylib: the static library has no SONAME. (libarenagc_malloc.so is another
    // package, with no build script: a preload library needs none.) GNU ld syntax: the library
    // is for Linux with glibc.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libarenagc.so.{major}");
    println!("cargo:rerun-if-changed=build.rs");
}
