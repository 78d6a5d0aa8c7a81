//! Gateway metrics in Prometheus text format, per platform and operation:
//! calls by upstream status class (or the gateway's own failure), retries,
//! time to the upstream's response headers, and tokens minted per platform.

use crate::prom::{label, Histogram};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Status classes, in the order they are counted.
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "failed"];

#[derive(Debug, Default)]
struct Series {
    by_class: [u64; CLASSES.len()],
    retries: u64,
    latency: Histogram,
}

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    series: Mutex<BTreeMap<(&'static str, String), Series>>,
}

impl ProxyMetrics {
    /// Records one call: the upstream status (`None` when the gateway
    /// answered for a broken upstream), retries and latency.
    pub fn record(
        &self,
        platform: &'static str,
        operation: &str,
        status: Option<u16>,
        retries: u32,
        elapsed: Duration,
    ) {
        let Ok(mut map) = self.series.lock() else {
            return;
        };
        let s = map.entry((platform, operation.to_owned())).or_default();
        let class = match status {
            Some(code @ 100..=599) => usize::from(code / 100) - 1,
            _ => CLASSES.len() - 1,
        };
        s.by_class[class] += 1;
        s.retries += u64::from(retries);
        s.latency.observe(elapsed);
    }

    /// Renders the families; `mints` lists tokens minted per platform.
    pub fn render(&self, mints: &[(&'static str, u64)]) -> String {
        let mut out = String::new();
        let Ok(map) = self.series.lock() else {
            return out;
        };
        out.push_str("# HELP cpixd_proxy_requests_total Gateway calls by platform, operation and upstream status class (failed: no upstream answer).\n");
        out.push_str("# TYPE cpixd_proxy_requests_total counter\n");
        for ((p, op), s) in map.iter() {
            for (class, n) in CLASSES.iter().zip(s.by_class) {
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "cpixd_proxy_requests_total{{platform=\"{p}\",operation=\"{}\",class=\"{class}\"}} {n}",
                        label(op)
                    );
                }
            }
        }
        out.push_str("# HELP cpixd_proxy_retries_total Upstream attempts repeated after a transient failure.\n");
        out.push_str("# TYPE cpixd_proxy_retries_total counter\n");
        for ((p, op), s) in map.iter() {
            let _ = writeln!(
                out,
                "cpixd_proxy_retries_total{{platform=\"{p}\",operation=\"{}\"}} {}",
                label(op),
                s.retries
            );
        }
        out.push_str("# HELP cpixd_proxy_upstream_duration_seconds Time to the upstream's response headers, retries included.\n");
        out.push_str("# TYPE cpixd_proxy_upstream_duration_seconds histogram\n");
        for ((p, op), s) in map.iter() {
            let labels = format!("platform=\"{p}\",operation=\"{}\"", label(op));
            s.latency
                .render(&mut out, "cpixd_proxy_upstream_duration_seconds", &labels);
        }
        out.push_str(
            "# HELP cpixd_proxy_tokens_minted_total Upstream access tokens minted or refreshed.\n",
        );
        out.push_str("# TYPE cpixd_proxy_tokens_minted_total counter\n");
        for (p, n) in mints {
            let _ = writeln!(
                out,
                "cpixd_proxy_tokens_minted_total{{platform=\"{p}\"}} {n}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_retries_latency_and_mints() {
        let m = ProxyMetrics::default();
        m.record(
            "kinescope",
            "get_video",
            Some(200),
            0,
            Duration::from_millis(4),
        );
        m.record(
            "kinescope",
            "get_video",
            Some(503),
            2,
            Duration::from_millis(40),
        );
        m.record("pixop", "list_videos", None, 1, Duration::from_secs(31));
        let text = m.render(&[("pixop", 3)]);
        for line in [
            r#"cpixd_proxy_requests_total{platform="kinescope",operation="get_video",class="2xx"} 1"#,
            r#"cpixd_proxy_requests_total{platform="kinescope",operation="get_video",class="5xx"} 1"#,
            r#"cpixd_proxy_requests_total{platform="pixop",operation="list_videos",class="failed"} 1"#,
            r#"cpixd_proxy_retries_total{platform="kinescope",operation="get_video"} 2"#,
            r#"cpixd_proxy_upstream_duration_seconds_bucket{platform="kinescope",operation="get_video",le="0.005"} 1"#,
            r#"cpixd_proxy_upstream_duration_seconds_count{platform="kinescope",operation="get_video"} 2"#,
            r#"cpixd_proxy_tokens_minted_total{platform="pixop"} 3"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
