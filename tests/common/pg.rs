//! PostgreSQL for the tests. `CPIXD_TEST_PG_URL` names a server the tests
//! may create databases on (`scripts/test` starts a throwaway cluster and
//! sets it); each test gets a fresh database of its own. Tests that must
//! stop and restart the database start a private [`Cluster`] with
//! `scripts/pg-cluster`. Without a server the tests print why and skip;
//! under `CI=true` they fail instead.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether missing tools must fail the test (CI) rather than skip it.
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn unavailable(why: &str) -> Option<String> {
    if required() {
        panic!("PostgreSQL is required under CI=true: {why}");
    }
    eprintln!("SKIP: {why}");
    None
}

/// The admin URL of the test server, or `None` (with the reason printed).
pub fn server_url() -> Option<String> {
    match std::env::var("CPIXD_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => unavailable(
            "CPIXD_TEST_PG_URL is not set (scripts/test starts a throwaway PostgreSQL cluster when PostgreSQL is installed: apt-get install postgresql)",
        ),
    }
}

/// Runs SQL statements on `url` (a small runtime on its own thread, so
/// callers may be inside one).
pub fn execute(url: &str, statements: &[String]) {
    let url = url.to_owned();
    let statements = statements.to_vec();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connect {url}: {e}"));
            let task = tokio::spawn(conn);
            for s in &statements {
                client
                    .batch_execute(s)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
            drop(client);
            let _ = task.await;
        })
    })
    .join()
    .unwrap();
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let cut = base
        .rfind('/')
        .filter(|&i| i > "postgres://".len())
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A new empty database on the test server; its URL.
pub fn fresh_database(admin_url: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "cpixd_t_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    execute(admin_url, &[format!("CREATE DATABASE {name}")]);
    with_database(admin_url, &name)
}

/// A fresh database on the test server, or `None` (skip).
pub fn database() -> Option<String> {
    server_url().map(|u| fresh_database(&u))
}

/// A private cluster (`scripts/pg-cluster`) that a test may stop and
/// restart; stopped and removed when dropped.
pub struct Cluster {
    dir: PathBuf,
    /// Its admin URL.
    pub url: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-cluster")
}

impl Cluster {
    /// Starts one, or `None` (skip) when PostgreSQL is not installed.
    pub fn start() -> Option<Cluster> {
        Self::start_with(&[])
    }

    /// Starts one serving TLS with this certificate and key (PEM).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Option<Cluster> {
        let dir = tempfile::tempdir().unwrap().keep();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        let c = Self::start_with(&[
            ("PG_TLS_CERT", cert.to_str().unwrap()),
            ("PG_TLS_KEY", key.to_str().unwrap()),
        ]);
        let _ = std::fs::remove_dir_all(&dir);
        c
    }

    fn start_with(env: &[(&str, &str)]) -> Option<Cluster> {
        let dir = std::env::temp_dir().join(format!(
            "cpixd-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .envs(env.iter().copied())
            .output()
            .expect("run scripts/pg-cluster");
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            unavailable(&format!(
                "cannot start a PostgreSQL cluster: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Some(Cluster { dir, url })
    }

    fn run(&self, cmd: &str) {
        let out = Command::new(script())
            .arg(cmd)
            .arg(&self.dir)
            .output()
            .expect("run scripts/pg-cluster");
        assert!(
            out.status.success(),
            "pg-cluster {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server (fast shutdown: sessions are cut).
    pub fn stop(&self) {
        self.run("stop");
    }

    /// Starts it again on the same port.
    pub fn start_again(&self) {
        let out = Command::new(script())
            .arg("start")
            .arg(&self.dir)
            .output()
            .expect("run scripts/pg-cluster");
        assert!(
            out.status.success(),
            "pg-cluster start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
