/// mimalloc rather than glibc's malloc: see its line in Cargo.toml (the relay's hot path).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    stripe_ops::cli::main()
}

/// mimalloc asks for transparent huge pages on its arenas (`MADV_HUGEPAGE`, its `allow_thp`
/// option, on by default). Then a fresh 2 MiB page is zeroed in one fault: in `fanout
/// --from-sqs` (a receive's 50 KB answer, its bodies) `clear_page_erms` under those faults was
/// 8.6 % of the relay's CPU, and without huge pages a message cost 152 µs of CPU instead of
/// 166-167 (`PREFILL=1 EVENTS=1000 RELAYS=1 BENCH=0 scripts/bench-sqs.sh`, two interleaved
/// pairs), while the spool relay's figures did not move (`cargo bench --bench fanout`). The
/// same as `MIMALLOC_ALLOW_THP=0`, for this process and what it starts; Linux only.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and no pointers.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
