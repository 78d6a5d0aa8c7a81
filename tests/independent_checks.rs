//! Independent checks, by parsers we did not write: every golden response
//! is run through `tests/py/check_responses.py` (pywidevine, pyplayready,
//! lxml with the official CPIX schemas and our `xsd/speke.xsd`).
//!
//! The Python environment comes from `scripts/test` (a venv in
//! `target/pyenv`, or `CPIXD_PYTHON`). Outside CI a missing environment is a
//! printed skip; under `CI=true` it is a failure.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// The Python interpreter with the checker's packages, if available.
fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("CPIXD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::root().join("target/pyenv/bin/python"));
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

/// Runs a script and asserts exit status 0, showing its output.
fn run_ok(mut cmd: Command) -> String {
    let out = cmd.output().expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn golden_responses_pass_the_independent_checker() {
    let Some(py) = python() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(common::fixtures().join("responses"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    assert!(files.len() >= 16);
    let mut cmd = Command::new(&py);
    cmd.arg(common::root().join("tests/py/check_responses.py"));
    match common::shared("xsd") {
        Some(xsd) => {
            cmd.arg("--xsd-dir").arg(xsd);
        }
        None => eprintln!("SKIP: XSD validation (official CPIX schemas not available)"),
    }
    cmd.args(&files);
    let text = run_ok(cmd);
    println!("{text}");
    let ok_lines = text.lines().filter(|l| l.starts_with("OK ")).count();
    assert_eq!(ok_lines, files.len(), "{text}");
}

#[test]
fn the_checker_catches_broken_responses() {
    let Some(py) = python() else { return };
    let Some(xsd) = common::shared("xsd") else {
        return;
    };
    let mut cmd = Command::new(&py);
    cmd.arg(common::root().join("tests/py/selftest_check_responses.py"))
        .arg("--xsd-dir")
        .arg(xsd);
    println!("{}", run_ok(cmd));
}
