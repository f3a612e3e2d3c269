fn main() -> std::process::ExitCode {
    stripe_ops::cli::main()
}
