//! The `tessera` binary.

// mimalloc: the hot path allocates a few small buffers per token, and a registry of a million
// clients is millions of small allocations; both cost less with it than with the system allocator
// (bench/instructions.sh and bench/token.sh, PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tessera::cli::main()
}
