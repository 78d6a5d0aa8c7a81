//! The `cpixd` binary: parses the command line and runs it.

use clap::Parser;

/// mimalloc: a request allocates hundreds of small strings, and glibc's
/// allocator was a fifth of the engine's instructions.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = cpixd::cli::Cli::parse();
    match cpixd::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
