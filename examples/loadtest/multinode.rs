//! (d) The multi-node mode of the load test (`--multinode [ADMIN_URL]`):
//! 1, 2 and 3 cpixd nodes on one PostgreSQL database (a fresh database per
//! node count; without a URL a throwaway cluster is started with
//! `scripts/pg-cluster`), beside one embedded node as the baseline, each
//! run measuring
//!
//! - the storm: `--storm` concurrent new-content requests (8 new KIDs
//!   each) spread round-robin over the nodes; then node 0 is SIGKILLed and
//!   every request is asked again through the others (or, for one node,
//!   a restarted one): every answered key must come back identical;
//! - repeated requests for existing keys, response cache off, closed loop;
//! - new content, closed loop: every request has fresh KIDs;
//! - database transactions per request (from `pg_stat_database`) for the
//!   last two.

use super::{
    client, closed_loop_over, keys_of, post, start_cpixd_with, storm, Args, NewContent, Stats,
};
use bytes::Bytes;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

/// One node count's results.
struct Run {
    name: String,
    storm: Stats,
    durable: usize,
    repeated: Stats,
    fresh: Stats,
    xacts_repeated: Option<f64>,
    xacts_fresh: Option<f64>,
}

/// SQL on `url`, one value back.
async fn query_i64(url: &str, sql: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

async fn execute(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client.batch_execute(sql).await.expect(sql);
}

/// Transactions committed or rolled back in `db_url`'s database so far
/// (the statistics collector flushes within a second).
async fn transactions(db_url: &str) -> i64 {
    tokio::time::sleep(Duration::from_millis(1200)).await;
    query_i64(
        db_url,
        "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
    )
    .await
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let cut = base
        .rfind('/')
        .filter(|&i| i > "postgres://".len())
        .unwrap_or(base.len());
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{db}{q}", &base[..cut])
}

/// Starts `n` nodes; `db_url` `None` is one embedded node.
fn start_nodes(bin: &Path, dir: &Path, db_url: Option<&str>, n: usize) -> Vec<(Child, String)> {
    let extra = match db_url {
        Some(u) => format!(
            "master_key_file = {:?}\n[store]\nbackend = \"postgres\"\nurl = {u:?}\npool_size = 16\n[limits]\nresponse_cache_bytes = 0\n",
            dir.join("master.key")
        ),
        None => "[limits]\nresponse_cache_bytes = 0\n".to_owned(),
    };
    (0..n)
        .map(|i| {
            let d = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&d).unwrap();
            start_cpixd_with(bin, &d, &extra)
        })
        .collect()
}

fn kill(nodes: Vec<(Child, String)>) {
    for (mut c, _) in nodes {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Runs (d) for the embedded baseline and 1, 2, 3 PostgreSQL nodes.
pub fn run(rt: &tokio::runtime::Runtime, a: &Args, template: &str, admin_url: Option<String>) {
    let cluster = tempfile::tempdir().unwrap();
    let (admin, own_cluster) = match admin_url {
        Some(u) => (u, false),
        None => {
            let out = Command::new("scripts/pg-cluster")
                .arg("start")
                .arg(cluster.path().join("pg"))
                .output()
                .expect("scripts/pg-cluster (run from the repository root)");
            assert!(
                out.status.success(),
                "cannot start PostgreSQL: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (
                String::from_utf8(out.stdout).unwrap().trim().to_owned(),
                true,
            )
        }
    };
    let kids: Vec<String> = cpixd::cpix::parse(template.as_bytes())
        .unwrap()
        .keys()
        .iter()
        .map(|k| k.kid.to_string())
        .collect();
    let fresh = Arc::new(NewContent::new(template, &kids));
    let repeated_body = Bytes::from(template.to_owned());
    let mut runs = Vec::new();
    for (nodes_n, on_pg) in [(1, false), (1, true), (2, true), (3, true)] {
        let dir = tempfile::tempdir().unwrap();
        let mk = cpixd::crypto::MasterKey::generate(1, &cpixd::crypto::OsRandom);
        let mk_path = dir.path().join("master.key");
        std::fs::write(&mk_path, format!("1:{}\n", cpixd::b64::encode(mk.expose()))).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&mk_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let db_url = on_pg.then(|| {
            let name = format!("cpixd_load_{nodes_n}_{}", std::process::id());
            rt.block_on(execute(&admin, &format!("DROP DATABASE IF EXISTS {name}")));
            rt.block_on(execute(&admin, &format!("CREATE DATABASE {name}")));
            with_database(&admin, &name)
        });
        let name = match &db_url {
            Some(_) => format!("{nodes_n} node(s), PostgreSQL"),
            None => "1 node, embedded (baseline)".to_owned(),
        };
        let mut nodes = start_nodes(&a.cpixd, dir.path(), db_url.as_deref(), nodes_n);
        let urls: Vec<String> = nodes
            .iter()
            .map(|(_, addr)| format!("http://{addr}/kms/v1/speke2"))
            .collect();
        // The storm, spread over the nodes.
        let offset = 1_000_000 * nodes_n + if on_pg { 0 } else { 500_000 };
        let requests: Vec<Bytes> = (0..a.storm).map(|n| fresh.body(offset + n)).collect();
        let (storm_stats, bodies) = rt.block_on(storm(&urls, &requests));
        // SIGKILL node 0; ask everything again through the others.
        let (mut first, _) = nodes.remove(0);
        let _ = first.kill();
        let _ = first.wait();
        let again_urls: Vec<String> = if nodes.is_empty() {
            let restarted = start_nodes(&a.cpixd, dir.path(), db_url.as_deref(), 1);
            let urls = restarted
                .iter()
                .map(|(_, addr)| format!("http://{addr}/kms/v1/speke2"))
                .collect();
            nodes = restarted;
            urls
        } else {
            urls[1..].to_vec()
        };
        let (_, bodies2) = rt.block_on(storm(&again_urls, &requests));
        let durable = bodies
            .iter()
            .zip(&bodies2)
            .filter(|(x, y)| !x.is_empty() && !keys_of(x).is_empty() && keys_of(x) == keys_of(y))
            .count();
        kill(nodes);
        // Throughput with every node up again.
        let nodes = start_nodes(&a.cpixd, dir.path(), db_url.as_deref(), nodes_n);
        let urls: Vec<String> = nodes
            .iter()
            .map(|(_, addr)| format!("http://{addr}/kms/v1/speke2"))
            .collect();
        let warm = rt
            .block_on(post(&client(), &urls[0], &repeated_body))
            .expect("warm-up");
        assert_eq!(warm.0, 200, "{}", String::from_utf8_lossy(&warm.1));
        let before = db_url.as_deref().map(|u| rt.block_on(transactions(u)));
        let body = repeated_body.clone();
        let repeated = rt.block_on(closed_loop_over(
            &urls,
            Arc::new(move |_| body.clone()),
            None,
            a.connections,
            a.seconds,
        ));
        let middle = db_url.as_deref().map(|u| rt.block_on(transactions(u)));
        let generator = fresh.clone();
        let base = 10_000_000 * (nodes_n + 1) + if on_pg { 0 } else { 5_000_000 };
        let fresh = rt.block_on(closed_loop_over(
            &urls,
            Arc::new(move |n| generator.body(base + n)),
            None,
            a.connections,
            a.seconds,
        ));
        let after = db_url.as_deref().map(|u| rt.block_on(transactions(u)));
        let per = |from: Option<i64>, to: Option<i64>, s: &Stats| {
            Some((to? - from?) as f64 / (s.requests + s.errors).max(1) as f64)
        };
        kill(nodes);
        runs.push(Run {
            name,
            xacts_repeated: per(before, middle, &repeated),
            xacts_fresh: per(middle, after, &fresh),
            storm: storm_stats,
            durable,
            repeated,
            fresh,
        });
    }
    if own_cluster {
        let _ = Command::new("scripts/pg-cluster")
            .arg("stop")
            .arg(cluster.path().join("pg"))
            .output();
    }
    println!();
    println!(
        "(d) several nodes on one PostgreSQL (this machine), storm of {} new-content requests, {} connections for {} s, response cache off",
        a.storm, a.connections, a.seconds
    );
    println!("| nodes | storm s | storm errors | identical after SIGKILL of node 0 | existing keys req/s | p99 ms | DB xacts/req | new content req/s | p99 ms | DB xacts/req | errors |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let f = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.2}"));
    for r in &runs {
        println!(
            "| {} | {:.2} | {} | {}/{} | {:.0} | {:.2} | {} | {:.0} | {:.2} | {} | {} |",
            r.name,
            r.storm.seconds,
            r.storm.errors,
            r.durable,
            a.storm,
            r.repeated.rps(),
            r.repeated.pct(0.99),
            f(r.xacts_repeated),
            r.fresh.rps(),
            r.fresh.pct(0.99),
            f(r.xacts_fresh),
            r.repeated.errors + r.fresh.errors
        );
    }
}
