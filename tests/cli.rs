//! The offline command line: `cpixd speke answer` and `cpixd pssh decode`,
//! run as a user would run them.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn cpixd(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpixd"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn request(name: &str) -> String {
    common::fixtures()
        .join("requests")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn speke_answer_is_reproducible_with_a_seed() {
    let file = request("v2-video2-audio2-playready-live.xml");
    let a = cpixd(&["speke", "answer", &file, "--seed", "7"], None);
    let b = cpixd(&["speke", "answer", &file, "--seed", "7"], None);
    let c = cpixd(&["speke", "answer", &file, "--seed", "8"], None);
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout, "the seed decides the keys");
    let doc = cpixd::cpix::parse(&a.stdout).unwrap();
    assert_eq!(doc.content_id(), Some("channel-2"));
    assert!(doc.keys().iter().all(|k| k.plain_value().is_some()));
}

#[test]
fn speke_answer_reads_stdin_and_detects_the_version() {
    let body = std::fs::read(request("v1-widevine-vod.xml")).unwrap();
    let out = cpixd(&["speke", "answer", "-", "--seed", "1"], Some(&body));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(r#"id="vod-v1""#), "SPEKE 1.0 keeps CPIX@id");
    // Forcing 2.0 on a 1.0 document is refused with the AWS message.
    let out = cpixd(
        &["speke", "answer", "-", "--speke-version", "2.0"],
        Some(&body),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Missing CPIX@contentId"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn speke_answer_rejects_with_exit_2_and_the_message() {
    let body = std::fs::read_to_string(request("v2-video3-audio3-fairplay-live.xml"))
        .unwrap()
        .replace("\"cbcs\"", "\"cenc\"");
    let out = cpixd(&["speke", "answer", "-"], Some(body.as_bytes()));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "ContentKey@commonEncryptionScheme non compatible with DRMSystem 94ce86fb-07ff-4f43-adb8-93d2fa968ca2"
    );
    let missing = cpixd(&["speke", "answer", "/nonexistent.xml"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.xml"));
}

#[test]
fn pssh_decode_prints_system_kids_and_payload() {
    // Vector PR-6 (PlayReady 4.0 with LA_URL) and WV-3 (Widevine, cenc).
    let pr = "AAACfHBzc2gAAAAAmgTweZhAQoarkuZb4IhflQAAAlxcAgAAAQABAFICPABXAFIATQBIAEUAQQBEAEUAUgAgAHgAbQBsAG4AcwA9ACIAaAB0AHQAcAA6AC8ALwBzAGMAaABlAG0AYQBzAC4AbQBpAGMAcgBvAHMAbwBmAHQALgBjAG8AbQAvAEQAUgBNAC8AMgAwADAANwAvADAAMwAvAFAAbABhAHkAUgBlAGEAZAB5AEgAZQBhAGQAZQByACIAIAB2AGUAcgBzAGkAbwBuAD0AIgA0AC4AMAAuADAALgAwACIAPgA8AEQAQQBUAEEAPgA8AFAAUgBPAFQARQBDAFQASQBOAEYATwA+ADwASwBFAFkATABFAE4APgAxADYAPAAvAEsARQBZAEwARQBOAD4APABBAEwARwBJAEQAPgBBAEUAUwBDAFQAUgA8AC8AQQBMAEcASQBEAD4APAAvAFAAUgBPAFQARQBDAFQASQBOAEYATwA+ADwASwBJAEQAPgBUAGoANABJAEQAegBHADQAUABVAHEAUgBmAHMANQA0AEIAMgA1AFUAcQBnAD0APQA8AC8ASwBJAEQAPgA8AEMASABFAEMASwBTAFUATQA+AGsASgByAEQAMABMAEMAWAA0AGcAYwA9ADwALwBDAEgARQBDAEsAUwBVAE0APgA8AEwAQQBfAFUAUgBMAD4AaAB0AHQAcABzADoALwAvAGwAaQBjAC4AZQB4AGEAbQBwAGwAZQAuAGMAbwBtAC8AcAByADwALwBMAEEAXwBVAFIATAA+ADwALwBEAEEAVABBAD4APAAvAFcAUgBNAEgARQBBAEQARQBSAD4A";
    let out = cpixd(&["pssh", "decode", pr], None);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "9a04f079-9840-4286-ab92-e65be0885f95",
        "PlayReady",
        "4.0.0.0",
        "0f083e4e-b831-4a3d-917e-ce78076e54aa",
        "kJrD0LCX4gc=",
        "https://lic.example.com/pr",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    let wv = "AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSEDEyMzQ1Njc4OTAxMjM0NTZI49yVmwY=";
    let text = String::from_utf8(cpixd(&["pssh", "decode", wv], None).stdout).unwrap();
    for needle in ["Widevine", "31323334-3536-3738-3930-313233343536", "cenc"] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    let bad = cpixd(&["pssh", "decode", "AAAAOHBzc2gAAAAA"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(!bad.stderr.is_empty());
}
