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

#[test]
fn config_check_and_hash_secret() {
    let example = common::root().join("cpixd.example.toml");
    let ok = cpixd(&["config", "check", example.to_str().unwrap()], None);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "listen = \"x\"\n[[tenant]]\nid = \"a b\"\napi_key_sha256 = [\"00\"]\n",
    )
    .unwrap();
    let out = cpixd(&["config", "check", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for path in ["listen:", "tenant[0].id", "tenant[0].api_key_sha256[0]"] {
        assert!(err.contains(path), "{path} missing in {err}");
    }
    let h = cpixd(&["hash-secret"], Some(b"abc\n"));
    assert_eq!(
        String::from_utf8_lossy(&h.stdout).trim(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn keys_list_and_show_reveal_only_on_request() {
    use cpixd::keys::{IssueBatch, KeySpec, KeyStore};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // Create a store the way `cpixd serve` would, with one key in it.
    let cfg = cpixd::config::load(
        None,
        &cpixd::config::Overrides {
            listen: None,
            data_dir: Some(dir.path().into()),
        },
    )
    .unwrap();
    let ring = cpixd::config::load_keyring(&cfg).unwrap();
    let kid = cpixd::ids::KeyId::parse_uuid("0f083e4e-b831-4a3d-917e-ce78076e54aa").unwrap();
    let key = {
        let store = cpixd::store::EmbeddedStore::open(
            &dir.path().join("keys.redb"),
            ring,
            std::sync::Arc::new(cpixd::crypto::OsRandom),
        )
        .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let k = rt
            .block_on(store.get_or_create(IssueBatch {
                tenant: "default".into(),
                content_id: "movie-1".into(),
                protocol: "speke-2.0".into(),
                requester: "test".into(),
                specs: vec![KeySpec {
                    kid,
                    scheme: Some("cbcs".into()),
                    request_iv: None,
                    wants_iv: false,
                }],
            }))
            .unwrap();
        k.keys[0].key.clone()
    };
    let hex: String = key.expose().iter().map(|b| format!("{b:02x}")).collect();
    let list = cpixd(
        &["keys", "list", "--tenant", "default", "--data-dir", data],
        None,
    );
    assert_eq!(
        list.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("0f083e4e-b831-4a3d-917e-ce78076e54aa")
            && text.contains("movie-1")
            && text.contains("cbcs")
    );
    assert!(!text.contains(&hex));
    let by_content = cpixd(
        &[
            "keys",
            "list",
            "--tenant",
            "default",
            "--content-id",
            "other",
            "--data-dir",
            data,
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&by_content.stdout).is_empty());
    let show = cpixd(
        &[
            "keys",
            "show",
            "--tenant",
            "default",
            "--kid",
            "0f083e4eb8314a3d917ece78076e54aa",
            "--data-dir",
            data,
        ],
        None,
    );
    assert_eq!(show.status.code(), Some(0));
    assert!(
        !String::from_utf8_lossy(&show.stdout).contains(&hex),
        "no key without --reveal"
    );
    let reveal = cpixd(
        &[
            "keys",
            "show",
            "--tenant",
            "default",
            "--kid",
            "0f083e4e-b831-4a3d-917e-ce78076e54aa",
            "--reveal",
            "--data-dir",
            data,
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&reveal.stdout).contains(&hex));
    let other_tenant = cpixd(
        &[
            "keys",
            "show",
            "--tenant",
            "acme",
            "--kid",
            "0f083e4e-b831-4a3d-917e-ce78076e54aa",
            "--data-dir",
            data,
        ],
        None,
    );
    assert_eq!(other_tenant.status.code(), Some(1));
}
