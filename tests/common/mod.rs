//! Helpers shared by the integration tests: locating the project fixtures
//! and the team's `shared/` reference data beside the checkout.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `fixtures/` inside the project.
pub fn fixtures() -> PathBuf {
    root().join("fixtures")
}

/// `../shared/<sub>` beside the checkout, or `None` (with a printed reason)
/// when it is absent: such tests then check nothing and say so.
pub fn shared(sub: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("CPIXD_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("..").join("shared"))
        .join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} not found (reference data lives beside the checkout; set CPIXD_SHARED_DIR)",
            dir.display()
        );
        None
    }
}

/// Reads a file, panicking with its path on failure.
pub fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
pub mod burst;
pub mod certs;
pub mod check;
pub mod child;
pub mod fake;
pub mod hostile;
pub mod http;
pub mod pg;
pub mod server;
pub mod world;

/// The Python interpreter with the checker's packages, if available.
pub fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("CPIXD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/pyenv/bin/python"));
    let ok = Command::new(&candidate)
        .args(["-c", "import pywidevine, pyplayready, lxml, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(candidate);
    }
    let msg = format!(
        "Python checker environment not found at {} (run scripts/test, or set CPIXD_PYTHON)",
        candidate.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIP: {msg}");
    None
}
