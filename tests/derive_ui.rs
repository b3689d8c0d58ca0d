//! The derive's compile errors and its `crate = path` attribute, and `Gc::unsize`'s refusal of
//! a trait the type does not implement, through `trybuild`: each
//! `tests/ui/*.rs` is compiled on its own and its errors compared with the `.stderr` beside it
//! (`TRYBUILD=overwrite cargo test --test derive_ui` writes them anew after a deliberate change
//! of a message or of the compiler's wording).

#[test]
fn derive_ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_renamed_crate.rs");
    t.compile_fail("tests/ui/fail_field_not_trace.rs");
    t.compile_fail("tests/ui/fail_unknown_attribute.rs");
    t.compile_fail("tests/ui/fail_finalize_type.rs");
    t.compile_fail("tests/ui/fail_crate_path.rs");
    t.compile_fail("tests/ui/fail_unsize_not_impl.rs");
}
