//! Peak resident memory of 1M live 32-byte blocks, per allocator, against the 32 MB payload.
//! Each allocator runs in its own child process (this binary with an argument), so the figures
//! do not blur into each other. Prints a markdown table of the ratios.

#[allow(dead_code)] // this bench uses only the allocator list and `lay`
mod common;

use common::{Alloc, allocators, lay};

const N: usize = 1_000_000;
const SIZE: usize = 32;

fn hwm_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn run(a: Alloc) -> usize {
    let l = lay(SIZE);
    // The pointer table comes from mmap, not from the allocator under test.
    let table = arenagc::alloc::os::reserve_table(N * 8) as *mut *mut u8;
    // SAFETY: the table holds N pointers; touching it first keeps it out of the measurement.
    unsafe { table.write_bytes(1, N) };
    let before = hwm_kib();
    for i in 0..N {
        // SAFETY: valid layout; the block is filled so it is resident.
        unsafe {
            let p = a.alloc(l);
            p.write_bytes(i as u8, SIZE);
            *table.add(i) = p;
        }
    }
    (hwm_kib() - before) * 1024
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(which) = args.iter().find_map(|a| a.strip_prefix("--child=")) {
        let (_, a) = allocators()
            .into_iter()
            .find(|(name, _)| *name == which)
            .expect("unknown allocator");
        let bytes = run(a);
        println!("{bytes}");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let payload = N * SIZE;
    println!(
        "| allocator | peak RSS growth (MiB) | / payload ({} MiB) |",
        payload >> 20
    );
    println!("|---|---|---|");
    for (name, _) in allocators() {
        let out = std::process::Command::new(&exe)
            .arg(format!("--child={name}"))
            .output()
            .unwrap();
        let bytes: usize = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        println!(
            "| {name} | {:.1} | {:.3} |",
            bytes as f64 / (1 << 20) as f64,
            bytes as f64 / payload as f64
        );
    }
}
