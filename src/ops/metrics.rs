//! Prometheus metrics, kept with the `prometheus-client` crate and served in
//! the OpenMetrics text format (which Prometheus scrapes natively). Labels
//! come from route names and fixed words, never from raw paths or input, so
//! their number is bounded.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: &'static str,
}

/// The kinds of token latchkey issues.
#[derive(Debug, Clone, Copy)]
pub enum Issued {
    Access,
    Refresh,
    Private,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabel, Histogram>,
    logins: Family<OutcomeLabel, Counter>,
    issued: Family<KindLabel, Counter>,
    reuse: Counter,
    cleaned: Family<TableLabel, Counter>,
    audit: Family<EventLabel, Counter>,
    audit_suppressed: Family<EventLabel, Counter>,
    hash_queue: Gauge,
    mails: Family<OutcomeLabel, Counter>,
    mails_queued: Gauge,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s: from a cached profile read to a queued argon2 login.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("latchkey");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let logins = Family::<OutcomeLabel, Counter>::default();
        let issued = Family::<KindLabel, Counter>::default();
        let reuse = Counter::default();
        let cleaned = Family::<TableLabel, Counter>::default();
        let audit = Family::<EventLabel, Counter>::default();
        let audit_suppressed = Family::<EventLabel, Counter>::default();
        let hash_queue = Gauge::default();
        let mails = Family::<OutcomeLabel, Counter>::default();
        let mails_queued = Gauge::default();
        registry.register(
            "mails",
            "Mails handed over (sent) or given up (failed) by the sender",
            mails.clone(),
        );
        registry.register(
            "mails_queued",
            "Mails in the outbox waiting to be sent",
            mails_queued.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            latency.clone(),
        );
        registry.register("logins", "Login attempts by outcome", logins.clone());
        registry.register("tokens_issued", "Tokens issued by kind", issued.clone());
        registry.register(
            "refresh_reuse_detected",
            "Reuses of a replaced refresh token (each ended a session)",
            reuse.clone(),
        );
        registry.register(
            "cleanup_rows_removed",
            "Rows removed by cleanup, by table",
            cleaned.clone(),
        );
        registry.register(
            "audit_events",
            "Audit events written, by event",
            audit.clone(),
        );
        registry.register(
            "audit_events_suppressed",
            "Refused logins beyond the audit log's daily budget, not recorded, by event",
            audit_suppressed.clone(),
        );
        registry.register(
            "password_hash_queue",
            "Password hashes running or waiting",
            hash_queue.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            logins,
            issued,
            reuse,
            cleaned,
            audit,
            audit_suppressed,
            hash_queue,
            mails,
            mails_queued,
        }
    }
}

impl Metrics {
    pub fn request(&self, route: &'static str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
        self.latency
            .get_or_create(&RouteLabel { route })
            .observe(seconds);
    }

    pub fn login(&self, success: bool) {
        let outcome = if success { "success" } else { "failure" };
        self.logins.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn issued(&self, kind: Issued) {
        let kind = match kind {
            Issued::Access => "access",
            Issued::Refresh => "refresh",
            Issued::Private => "private",
        };
        self.issued.get_or_create(&KindLabel { kind }).inc();
    }

    pub fn refresh_reuse(&self) {
        self.reuse.inc();
    }

    pub fn cleaned(&self, table: &'static str, rows: usize) {
        self.cleaned
            .get_or_create(&TableLabel { table })
            .inc_by(rows as u64);
    }

    /// Mails the sender delivered and gave up on.
    pub fn mails(&self, sent: usize, failed: usize) {
        for (outcome, n) in [("sent", sent), ("failed", failed)] {
            if n > 0 {
                self.mails
                    .get_or_create(&OutcomeLabel { outcome })
                    .inc_by(n as u64);
            }
        }
    }

    /// An audit event was written (`domain::audit`; the label is its name).
    pub fn audited(&self, event: &'static str) {
        self.audit.get_or_create(&EventLabel { event }).inc();
    }

    /// A refused login was over the audit log's budget and not recorded.
    pub fn audit_suppressed(&self, event: &'static str) {
        self.audit_suppressed
            .get_or_create(&EventLabel { event })
            .inc();
    }

    /// The exposition, with gauges read at scrape time.
    pub fn render(&self, hash_queue: usize, mails_queued: i64) -> String {
        self.hash_queue.set(hash_queue as i64);
        self.mails_queued.set(mails_queued);
        // Both outcomes appear from the start, so a dashboard sees zeros.
        for outcome in ["sent", "failed"] {
            let _ = self.mails.get_or_create(&OutcomeLabel { outcome });
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_exposition() {
        let m = Metrics::default();
        m.request("log_in", 200, 0.02);
        m.login(false);
        m.issued(Issued::Access);
        m.cleaned("refresh_tokens", 7);
        m.mails(2, 1);
        m.audited("login_failed");
        let text = m.render(3, 4);
        for line in [
            r#"latchkey_mails_total{outcome="sent"} 2"#,
            r#"latchkey_mails_total{outcome="failed"} 1"#,
            "latchkey_mails_queued 4",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(
            text.contains(r#"latchkey_audit_events_total{event="login_failed"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"latchkey_http_requests_total{route="log_in",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"latchkey_logins_total{outcome="failure"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"latchkey_cleanup_rows_removed_total{table="refresh_tokens"} 7"#),
            "{text}"
        );
        assert!(text.contains("latchkey_password_hash_queue 3"), "{text}");
        assert!(
            text.contains("latchkey_http_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
