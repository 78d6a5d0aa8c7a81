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
    let Some(py) = common::python() else { return };
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
    let Some(py) = common::python() else { return };
    let Some(xsd) = common::shared("xsd") else {
        return;
    };
    let mut cmd = Command::new(&py);
    cmd.arg(common::root().join("tests/py/selftest_check_responses.py"))
        .arg("--xsd-dir")
        .arg(xsd);
    println!("{}", run_ok(cmd));
}

#[test]
fn an_encrypted_response_decrypts_with_pythons_cryptography() {
    let Some(py) = common::python() else { return };
    use common::certs::{pair, with_recipients};
    use cpixd::crypto::SeededRandom;
    use cpixd::speke::{self, FillContext, MemoryKeySource, SpekeVersion};
    let request = String::from_utf8(common::read(
        &common::fixtures()
            .join("requests")
            .join("v2-video5-audio3-widevine-playready-fairplay-live.xml"),
    ))
    .unwrap();
    let [r1, r2] = pair();
    let rng = std::sync::Arc::new(SeededRandom::new(33));
    let keys = MemoryKeySource::new(rng.clone());
    let settings = cpixd::drm::DrmSettings::default();
    let ctx = FillContext::new(&settings, &*rng);
    let answer = |body: &str| {
        speke::answer(
            body.as_bytes(),
            SpekeVersion::V2_0,
            &keys,
            &ctx,
            &Default::default(),
        )
        .unwrap()
        .body
    };
    let encrypted = answer(&with_recipients(&request, &[&r1.cert_der, &r2.cert_der]));
    let clear = cpixd::cpix::parse(answer(&request).as_bytes()).unwrap();
    let expected: serde_json::Map<String, serde_json::Value> = clear
        .keys()
        .iter()
        .map(|k| {
            (
                k.kid.to_string(),
                cpixd::b64::encode(k.plain_value().unwrap()).into(),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (resp, expect) = (
        dir.path().join("response.xml"),
        dir.path().join("expected.json"),
    );
    std::fs::write(&resp, &encrypted).unwrap();
    std::fs::write(&expect, serde_json::to_string(&expected).unwrap()).unwrap();
    for (i, r) in [r1, r2].iter().enumerate() {
        let key = dir.path().join(format!("key{i}.pem"));
        std::fs::write(&key, &r.key_pem).unwrap();
        let mut cmd = Command::new(&py);
        cmd.arg(common::root().join("tests/py/decrypt_check.py"))
            .args([&resp, &key, &expect]);
        let out = run_ok(cmd);
        assert!(out.contains("OK 8 keys"), "{out}");
    }
    // The encrypted document is valid CPIX too (schema, references, signalling).
    if let Some(xsd) = common::shared("xsd") {
        let mut cmd = Command::new(&py);
        cmd.arg(common::root().join("tests/py/check_responses.py"))
            .arg("--xsd-dir")
            .arg(xsd)
            .arg(&resp);
        let out = run_ok(cmd);
        assert!(out.contains("OK "), "{out}");
    }
    // The checker is not blind: a flipped MAC byte fails it.
    let doc = cpixd::cpix::parse(encrypted.as_bytes()).unwrap();
    let mut bad = doc.clone();
    bad.content_keys.as_mut().unwrap().items[0]
        .data
        .as_mut()
        .unwrap()
        .value_mac
        .as_mut()
        .unwrap()[5] ^= 0x40;
    std::fs::write(&resp, cpixd::cpix::write(&bad, &Default::default())).unwrap();
    let key = dir.path().join("key0.pem");
    let out = Command::new(&py)
        .arg(common::root().join("tests/py/decrypt_check.py"))
        .args([&resp, &key, &expect])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ValueMAC does not verify"));
    // Nor to the MAC on the wrapped document key (AWS layout).
    let mut bad = doc.clone();
    let secret = ["Data", "Secret", "ValueMAC"].iter().fold(
        &mut bad.delivery_data.as_mut().unwrap().items[0].document_keys[0],
        |e, name| {
            e.children
                .iter_mut()
                .find_map(|n| match n {
                    cpixd::cpix::xml::Node::Element(c) if c.local == *name => Some(c),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no {name}"))
        },
    );
    let mut mac = cpixd::b64::decode(&secret.text()).unwrap();
    mac[0] ^= 1;
    secret.set_text(cpixd::b64::encode(&mac));
    std::fs::write(&resp, cpixd::cpix::write(&bad, &Default::default())).unwrap();
    let out = Command::new(&py)
        .arg(common::root().join("tests/py/decrypt_check.py"))
        .args([&resp, &key, &expect])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("DocumentKey: ValueMAC does not verify"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn ci_makes_the_python_checks_mandatory() {
    // `.ci/run` exports CI=true before running the tests, so `python()`
    // above fails instead of skipping when the venv is missing.
    let ci = String::from_utf8(common::read(&common::root().join(".ci/run"))).unwrap();
    let export = ci
        .lines()
        .position(|l| l.trim() == "export CI=true")
        .expect("export CI=true in .ci/run");
    let tests = ci
        .lines()
        .position(|l| l.trim() == "scripts/test")
        .expect("scripts/test in .ci/run");
    assert!(export < tests, "CI=true is exported after the tests run");
}
