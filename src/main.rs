/// mimalloc rather than glibc's malloc: see its line in Cargo.toml (the relay's hot path).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    stripe_ops::cli::main()
}
