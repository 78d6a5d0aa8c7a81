//! Request metrics in Prometheus text format: requests by status, errors,
//! a latency histogram and keys issued, per endpoint and tenant. The
//! platform gateway keeps its own families (`proxy::metrics`); `/metrics`
//! serves both.

use crate::prom::{label, Histogram};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default)]
struct Series {
    by_status: BTreeMap<u16, u64>,
    errors_4xx: u64,
    errors_5xx: u64,
    latency: Histogram,
    keys_issued: u64,
}

/// The server's request metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Endpoint → tenant → series: recording a request looks the tenant up
    /// by `&str` and allocates only for a tenant's first request.
    series: Mutex<BTreeMap<&'static str, BTreeMap<String, Series>>>,
}

/// `map[key]`, inserting a default entry first when there is none; the
/// owned key is made only then.
fn slot<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

impl Metrics {
    /// Records one finished request.
    pub fn record(
        &self,
        endpoint: &'static str,
        tenant: &str,
        status: u16,
        elapsed: Duration,
        keys: usize,
    ) {
        let Ok(mut map) = self.series.lock() else {
            return;
        };
        let s = slot(map.entry(endpoint).or_default(), tenant);
        *s.by_status.entry(status).or_default() += 1;
        match status {
            400..=499 => s.errors_4xx += 1,
            500..=599 => s.errors_5xx += 1,
            _ => {}
        }
        s.latency.observe(elapsed);
        s.keys_issued += keys as u64;
    }

    /// Renders every family in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let Ok(map) = self.series.lock() else {
            return out;
        };
        let rows = || {
            map.iter()
                .flat_map(|(ep, tenants)| tenants.iter().map(move |(tenant, s)| ((ep, tenant), s)))
        };
        out.push_str(
            "# HELP cpixd_http_requests_total HTTP requests by endpoint, tenant and status.\n",
        );
        out.push_str("# TYPE cpixd_http_requests_total counter\n");
        for ((ep, tenant), s) in rows() {
            for (status, n) in &s.by_status {
                let _ = writeln!(
                    out,
                    "cpixd_http_requests_total{{endpoint=\"{ep}\",tenant=\"{}\",status=\"{status}\"}} {n}",
                    label(tenant)
                );
            }
        }
        out.push_str("# HELP cpixd_http_request_errors_total Requests answered with 4xx or 5xx.\n");
        out.push_str("# TYPE cpixd_http_request_errors_total counter\n");
        for ((ep, tenant), s) in rows() {
            for (class, n) in [("4xx", s.errors_4xx), ("5xx", s.errors_5xx)] {
                let _ = writeln!(
                    out,
                    "cpixd_http_request_errors_total{{endpoint=\"{ep}\",tenant=\"{}\",class=\"{class}\"}} {n}",
                    label(tenant)
                );
            }
        }
        out.push_str("# HELP cpixd_http_request_duration_seconds Request latency.\n");
        out.push_str("# TYPE cpixd_http_request_duration_seconds histogram\n");
        for ((ep, tenant), s) in rows() {
            let labels = format!("endpoint=\"{ep}\",tenant=\"{}\"", label(tenant));
            s.latency
                .render(&mut out, "cpixd_http_request_duration_seconds", &labels);
        }
        out.push_str("# HELP cpixd_keys_issued_total Content keys handed out in responses.\n");
        out.push_str("# TYPE cpixd_keys_issued_total counter\n");
        for ((ep, tenant), s) in rows() {
            let _ = writeln!(
                out,
                "cpixd_keys_issued_total{{endpoint=\"{ep}\",tenant=\"{}\"}} {}",
                label(tenant),
                s.keys_issued
            );
        }
        out
    }
}

/// (system, request type, status class) of one tenant's player requests.
type LicenceSeries = (&'static str, &'static str, &'static str);

/// Player requests by tenant, system, request type and status class
/// (`cpixd_licence_requests_total`).
#[derive(Debug, Default)]
pub struct LicenceMetrics {
    /// Tenant → series → count.
    counts: Mutex<BTreeMap<String, BTreeMap<LicenceSeries, u64>>>,
}

impl LicenceMetrics {
    /// Counts one finished player request.
    pub fn record(
        &self,
        tenant: &str,
        system: Option<crate::licence::DrmSystem>,
        request_type: crate::licence::log::RequestType,
        status: u16,
    ) {
        let class = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        if let Ok(mut m) = self.counts.lock() {
            *slot(&mut m, tenant)
                .entry((
                    system.map_or("-", |s| s.as_str()),
                    request_type.as_str(),
                    class,
                ))
                .or_default() += 1;
        }
    }

    /// The family in Prometheus text, with the log writer's counters.
    pub fn render(&self, writer: Option<&crate::licence::log::WriterStats>) -> String {
        use std::sync::atomic::Ordering;
        let mut out = String::new();
        out.push_str("# HELP cpixd_licence_requests_total Player requests (licences, certificates, keys, tokens) by tenant, system, type and status class.\n");
        out.push_str("# TYPE cpixd_licence_requests_total counter\n");
        if let Ok(m) = self.counts.lock() {
            let rows = m.iter().flat_map(|(tenant, series)| {
                series
                    .iter()
                    .map(move |((system, t, class), n)| (tenant, system, t, class, n))
            });
            for (tenant, system, t, class, n) in rows {
                let _ = writeln!(
                    out,
                    "cpixd_licence_requests_total{{tenant=\"{}\",system=\"{system}\",type=\"{t}\",class=\"{class}\"}} {n}",
                    label(tenant)
                );
            }
        }
        if let Some(w) = writer {
            out.push_str(
                "# HELP cpixd_licence_log_entries_total Licence log entries by outcome.\n",
            );
            out.push_str("# TYPE cpixd_licence_log_entries_total counter\n");
            for (outcome, n) in [
                ("written", &w.written),
                ("dropped", &w.dropped),
                ("failed", &w.failed),
                ("pruned", &w.pruned),
            ] {
                let _ = writeln!(
                    out,
                    "cpixd_licence_log_entries_total{{outcome=\"{outcome}\"}} {}",
                    n.load(Ordering::Relaxed)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_errors_histogram_and_keys() {
        let m = Metrics::default();
        m.record("speke2", "acme", 200, Duration::from_millis(3), 8);
        m.record("speke2", "acme", 422, Duration::from_micros(300), 0);
        m.record("speke", "b\"x", 503, Duration::from_secs(3), 0);
        let text = m.render();
        for line in [
            r#"cpixd_http_requests_total{endpoint="speke2",tenant="acme",status="200"} 1"#,
            r#"cpixd_http_requests_total{endpoint="speke2",tenant="acme",status="422"} 1"#,
            r#"cpixd_http_request_errors_total{endpoint="speke2",tenant="acme",class="4xx"} 1"#,
            r#"cpixd_http_request_errors_total{endpoint="speke",tenant="b\"x",class="5xx"} 1"#,
            r#"cpixd_http_request_duration_seconds_bucket{endpoint="speke2",tenant="acme",le="0.0005"} 1"#,
            r#"cpixd_http_request_duration_seconds_bucket{endpoint="speke2",tenant="acme",le="0.005"} 2"#,
            r#"cpixd_http_request_duration_seconds_bucket{endpoint="speke",tenant="b\"x",le="2.5"} 0"#,
            r#"cpixd_http_request_duration_seconds_count{endpoint="speke2",tenant="acme"} 2"#,
            r#"cpixd_keys_issued_total{endpoint="speke2",tenant="acme"} 8"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    /// Series are kept per endpoint, then per tenant: many requests of one
    /// tenant add up in one series, and the text lists series in endpoint
    /// then tenant order, as Prometheus clients diff it.
    #[test]
    fn series_add_up_per_tenant_in_endpoint_then_tenant_order() {
        use crate::licence::log::RequestType;
        use crate::licence::DrmSystem;
        let m = Metrics::default();
        for tenant in ["zeta", "acme", "acme", "beta"] {
            m.record("speke2", tenant, 200, Duration::from_millis(1), 1);
            m.record("cpix", tenant, 200, Duration::from_millis(1), 1);
        }
        let family = |text: &str, name: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with(name))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            family(&m.render(), "cpixd_keys_issued_total"),
            [
                r#"cpixd_keys_issued_total{endpoint="cpix",tenant="acme"} 2"#,
                r#"cpixd_keys_issued_total{endpoint="cpix",tenant="beta"} 1"#,
                r#"cpixd_keys_issued_total{endpoint="cpix",tenant="zeta"} 1"#,
                r#"cpixd_keys_issued_total{endpoint="speke2",tenant="acme"} 2"#,
                r#"cpixd_keys_issued_total{endpoint="speke2",tenant="beta"} 1"#,
                r#"cpixd_keys_issued_total{endpoint="speke2",tenant="zeta"} 1"#,
            ]
        );
        let l = LicenceMetrics::default();
        for (tenant, status) in [("zeta", 200), ("acme", 403), ("acme", 200), ("acme", 200)] {
            l.record(
                tenant,
                Some(DrmSystem::ClearKey),
                RequestType::License,
                status,
            );
        }
        l.record("acme", None, RequestType::Token, 200);
        assert_eq!(
            family(&l.render(None), "cpixd_licence_requests_total"),
            [
                r#"cpixd_licence_requests_total{tenant="acme",system="-",type="Token",class="2xx"} 1"#,
                r#"cpixd_licence_requests_total{tenant="acme",system="clearkey",type="License",class="2xx"} 2"#,
                r#"cpixd_licence_requests_total{tenant="acme",system="clearkey",type="License",class="4xx"} 1"#,
                r#"cpixd_licence_requests_total{tenant="zeta",system="clearkey",type="License",class="2xx"} 1"#,
            ]
        );
    }
}
