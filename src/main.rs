//! The `cpixd` binary: parses the command line and runs it.

use clap::Parser;

mod allocator;

#[global_allocator]
static ALLOC: allocator::Mimalloc = allocator::Mimalloc;

/// Tools that print (`cpixd cpix decrypt … | head`) end quietly when the
/// reader goes away, as Unix tools do: the default SIGPIPE action instead
/// of Rust's "ignore, then panic on the failed print". The server keeps
/// ignoring it: a client closing its socket must never stop it.
#[cfg(unix)]
fn exit_quietly_on_closed_stdout() {
    // SAFETY: called once at start, before any other thread exists;
    // restoring a signal's default action has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn exit_quietly_on_closed_stdout() {}

fn main() {
    let cli = cpixd::cli::Cli::parse();
    if !matches!(cli.command, cpixd::cli::Command::Serve(_)) {
        exit_quietly_on_closed_stdout();
    }
    match cpixd::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
