//! The re-entrancy rule, enforced by the core: no runtime switch (attach or detach) from code
//! the library runs on the thread: `Drop` impls run by a deallocation, finalizers, weakref and
//! gc callbacks, traces run by `get_referents` / `get_referrers`. `try_attach` refuses with
//! `GcError::SwitchFromLibraryCode`, `attach` panics, dropping an `AttachGuard` there aborts;
//! everywhere else switching works. Each test runs on a fresh thread.

use std::cell::RefCell;
use std::sync::LazyLock;

use arenagc::gc::{self, GcError, Runtime};
use arenagc::{Gc, GcCell, Trace};

/// Another runtime to try to switch to.
static OTHER: LazyLock<Runtime> = LazyLock::new(Runtime::new);

thread_local! {
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn isolated(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

/// Try every way of switching runtimes; record what happened in `SEEN` as `where: outcome`.
fn try_switch(place: &str) {
    let rule = gc::check_runtime_switch();
    // SAFETY: nothing is created while attached; the guard (if any) drops at once.
    let tried = unsafe { OTHER.try_attach() }.map(drop);
    // SAFETY: as above.
    let attach = std::panic::catch_unwind(|| drop(unsafe { OTHER.attach() }));
    let panic_msg = match &attach {
        Ok(()) => "no panic".to_string(),
        Err(p) => p
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "non-string panic".into()),
    };
    assert_eq!(
        rule.err(),
        tried.err(),
        "{place}: the rule and try_attach disagree"
    );
    let outcome = match tried {
        Ok(()) => "switched".to_string(),
        Err(GcError::SwitchFromLibraryCode) => {
            assert!(
                panic_msg.contains("Runtime::attach: called from code the library runs"),
                "{place}: attach should panic naming the rule, got: {panic_msg}"
            );
            "refused".to_string()
        }
        Err(e) => format!("unexpected {e:?}"),
    };
    SEEN.with(|s| s.borrow_mut().push(format!("{place}: {outcome}")));
}

fn seen() -> Vec<String> {
    SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

#[derive(Trace)]
struct Probe {
    next: Option<Gc<Probe>>,
    #[trace(skip)]
    name: &'static str,
}

impl Drop for Probe {
    fn drop(&mut self) {
        try_switch(self.name);
    }
}

#[test]
fn switching_is_allowed_at_the_top_level() {
    isolated(|| {
        try_switch("top");
        assert_eq!(seen(), ["top: switched"]);
        assert_eq!(gc::check_runtime_switch(), Ok(()));
    });
}

#[test]
fn a_drop_run_by_a_deallocation_cannot_switch_runtimes() {
    isolated(|| {
        let inner = Gc::new(Probe {
            next: None,
            name: "inner drop",
        });
        let outer = Gc::new(Probe {
            next: Some(inner),
            name: "outer drop",
        });
        drop(outer);
        assert_eq!(seen(), ["outer drop: refused", "inner drop: refused"]);
        // Afterwards (the deallocation's depth restored) it works again.
        try_switch("after");
        assert_eq!(seen(), ["after: switched"]);
    });
}

#[test]
fn a_drop_that_panics_leaves_switching_allowed_afterwards() {
    #[derive(Trace)]
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("boom");
        }
    }
    isolated(|| {
        let b = Gc::new(Bomb);
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(b))).is_err());
        try_switch("after the panic");
        assert_eq!(seen(), ["after the panic: switched"]);
    });
}

fn probe_finalize(_: &Gc<Finalized>) {
    try_switch("finalizer");
}

#[derive(Trace)]
#[trace(finalize = probe_finalize)]
struct Finalized {
    me: GcCell<Option<Gc<Finalized>>>,
}

#[test]
fn finalizers_weakref_and_gc_callbacks_of_a_collection_cannot_switch_runtimes() {
    isolated(|| {
        let id = gc::add_callback(|phase, _| try_switch(&format!("gc callback {phase:?}")));
        let a = Gc::new(Finalized {
            me: GcCell::new(None),
        });
        *a.me.borrow_mut() = Some(a.clone());
        let _w = Gc::downgrade_with_callback(&a, || try_switch("weakref callback"));
        drop(a);
        assert_eq!(gc::collect(2), Ok(1));
        assert_eq!(
            seen(),
            [
                "gc callback Start: refused",
                "weakref callback: refused",
                "finalizer: refused",
                "gc callback Stop: refused",
            ]
        );
        assert!(gc::remove_callback(id));
        try_switch("after");
        assert_eq!(seen(), ["after: switched"]);
    });
}

#[test]
fn a_finalizer_and_a_weakref_callback_run_by_a_deallocation_cannot_switch_runtimes() {
    isolated(|| {
        let a = Gc::new(Finalized {
            me: GcCell::new(None),
        });
        let _w = Gc::downgrade_with_callback(&a, || try_switch("weakref callback"));
        drop(a);
        assert_eq!(seen(), ["finalizer: refused", "weakref callback: refused"]);
    });
}

/// A value whose `trace` (run by `get_referents` / `get_referrers`) tries to switch.
struct Tracing;

// SAFETY: owns no Gc; visiting nothing is exact.
unsafe impl Trace for Tracing {
    fn trace(&self, _: &mut gc::Tracer) {
        try_switch("trace");
    }
}

#[test]
fn a_trace_run_by_get_referents_or_get_referrers_cannot_switch_runtimes() {
    isolated(|| {
        let t = Gc::new(Tracing);
        assert!(gc::get_referents(&t).is_empty());
        assert_eq!(seen(), ["trace: refused"]);
        assert!(gc::get_referrers(&t).is_empty());
        assert_eq!(seen(), ["trace: refused"]);
    });
}

/// An `AttachGuard` dropped by code the library runs (here: a value holding it, dropped by a
/// deallocation) can neither detach there nor stay attached: the process aborts with a message
/// naming the rule. Runs in a child.
#[test]
fn an_attach_guard_dropped_inside_a_deallocation_aborts_clearly() {
    const CHILD: &str = "ARENAGC_GUARD_IN_DROP_CHILD";
    if std::env::var_os(CHILD).is_some() {
        #[derive(Trace)]
        struct Holder {
            #[trace(skip)]
            _guard: RefCell<Option<gc::AttachGuard<'static>>>,
        }
        // SAFETY: the one object made while attached is dropped while attached.
        let g = unsafe { OTHER.attach() };
        let h = Gc::new(Holder {
            _guard: RefCell::new(Some(g)),
        });
        drop(h);
        println!("not reached");
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_attach_guard_dropped_inside_a_deallocation_aborts_clearly",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.signal(), Some(6), "{:?}\n{stderr}", out.status);
    assert!(!stdout.contains("not reached"), "{stdout}");
    assert!(
        stderr.contains("an AttachGuard was dropped there: called from code the library runs"),
        "{stderr}"
    );
}
