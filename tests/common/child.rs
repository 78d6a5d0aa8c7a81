//! `cpixd serve` as a child process for the tests that need a real one
//! (signals, peak memory, captured logs): starts it on 127.0.0.1:0, waits
//! for its "listening on" line and keeps everything it logs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `cpixd serve`.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: Arc<Mutex<String>>,
}

/// Starts `cpixd serve` in `dir` (its data directory), with `config` if
/// given and extra environment variables, logging at `debug`.
pub fn start(dir: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> Server {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    if let Some(c) = config {
        args.extend(["--config".into(), c.into()]);
    }
    args.extend(["--data-dir".into(), dir.into()]);
    start_in(dir, &args, env)
}

/// Starts `cpixd serve --listen 127.0.0.1:0 ARGS` in the working directory
/// `cwd`, logging at `debug` unless `env` says otherwise.
pub fn start_in(cwd: &Path, args: &[std::ffi::OsString], env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cpixd"));
    cmd.arg("serve").arg("--listen").arg("127.0.0.1:0");
    cmd.args(args)
        .current_dir(cwd)
        .env("CPIXD_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn cpixd");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on http://") {
                let rest = &line[i + "listening on ".len()..];
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
            let mut l = sink.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("server did not start: {}", log.lock().unwrap()));
    Server { child, base, log }
}

/// Sends a signal with the `kill` command (no unsafe code in the tests).
pub fn signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

impl Server {
    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `VmRSS` and `VmHWM` (peak) of the process, in KiB (Linux).
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// SIGTERM; waits for a clean exit and returns the whole log.
    pub fn sigterm(self) -> String {
        signal(self.child.id(), "TERM");
        self.wait_for_clean_exit()
    }

    /// Waits (bounded) for the process to exit with status 0; its log.
    pub fn wait_for_clean_exit(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}");
                break;
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.log()
    }

    /// SIGKILL.
    pub fn sigkill(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }

    /// True while the process has not exited.
    pub fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}
