//! The command line as scripts and operators meet it: a closed pipe ends a
//! command quietly; `config check` catches what `serve` would refuse (a
//! master key path that follows the old default instead of `data_dir`, a
//! configuration file with inline secrets that others can read) and `serve`
//! says it once; the data directory is made private.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cpixd"))
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    // The 8-key answer is 71 KB: more than a pipe holds, so the writer
    // meets the closed pipe.
    let file =
        common::fixtures().join("requests/v2-video5-audio3-widevine-playready-fairplay-live.xml");
    let mut child = bin()
        .args(["speke", "answer"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout); // like `| head -c 16`
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "did not end after the pipe closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe") && !err.contains("backtrace"),
        "{err}"
    );
    // Ended by SIGPIPE (as `cat` would be) or with success.
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.success() || status.signal() == Some(libc_sigpipe()),
        "{status:?}"
    );
}

fn libc_sigpipe() -> i32 {
    13
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn check(file: &Path) -> (Option<i32>, String) {
    let out = bin()
        .args(["config", "check"])
        .arg(file)
        .env_remove("CPIXD_MASTER_KEY")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn config_check_catches_what_serve_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(common::root().join("cpixd.example.toml")).unwrap();
    // The example with only data_dir changed is valid, and serve starts on
    // it with the master key generated inside that data_dir.
    let data = dir.path().join("elsewhere");
    let moved = example.replace(
        "data_dir = \"./cpixd-data\"",
        &format!("data_dir = {:?}", data.display().to_string()),
    );
    assert_ne!(moved, example, "the example sets data_dir");
    let file = dir.path().join("moved.toml");
    write(&file, &moved, 0o600);
    let (code, text) = check(&file);
    assert_eq!(code, Some(0), "{text}");
    let server =
        common::child::start_in(dir.path(), &["--config".into(), file.clone().into()], &[]);
    server.sigterm();
    assert!(data.join("master.key").is_file());
    assert!(!dir.path().join("cpixd-data").exists());

    // A master key path that does not exist (the old example's fixed path
    // beside a moved data_dir) is caught by check, and serve says it once.
    let stale = moved.replace(
        "# master_key_file = \"/etc/cpixd/master.key\"",
        "master_key_file = \"./cpixd-data/master.key\"",
    );
    assert_ne!(stale, moved);
    let file = dir.path().join("stale.toml");
    write(&file, &stale, 0o600);
    let (code, text) = check(&file);
    assert_eq!(code, Some(64), "{text}");
    assert!(text.contains("master_key_file"), "{text}");
    let out = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .current_dir(dir.path())
        .env_remove("CPIXD_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("master.key").count(), 1, "{err}");
}

#[test]
fn a_config_with_inline_secrets_must_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[platforms.kinescope]\ntoken = \"inline-token\"\n",
        common::server::config_toml()
    );
    let file = dir.path().join("cpixd.toml");
    write(&file, &text, 0o644);
    let (code, out) = check(&file);
    assert_eq!(code, Some(64), "{out}");
    assert!(
        out.contains("platforms.kinescope.token") && out.contains("chmod 600"),
        "{out}"
    );
    assert!(
        !out.contains("inline-token"),
        "the secret was printed: {out}"
    );
    let serve = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(64));
    // Private, it is accepted.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out) = check(&file);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn the_data_directory_is_private() {
    let dir = tempfile::tempdir().unwrap();
    // Made by serve for a master key from the environment.
    let data = dir.path().join("data");
    let config = dir.path().join("cpixd.toml");
    write(&config, &common::server::config_toml(), 0o600);
    let key = "QUFB".repeat(10) + "QUE=";
    let args = [
        "--config".into(),
        config.clone().into(),
        "--data-dir".into(),
        data.clone().into(),
    ];
    let server = common::child::start_in(dir.path(), &args, &[("CPIXD_MASTER_KEY", &key)]);
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    server.sigterm();
    assert_eq!(mode, 0o700, "data directory mode {mode:o}");
    // An existing one that others may write to is reported.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let server = common::child::start_in(dir.path(), &args, &[("CPIXD_MASTER_KEY", &key)]);
    let log = server.sigterm();
    assert!(log.contains("writable by group or others"), "{log}");
}
