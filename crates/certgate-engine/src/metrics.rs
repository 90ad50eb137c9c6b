//! The gateway's metric families, rendered by the API's `GET /metrics` in the Prometheus text
//! format (OpenMetrics when the scraper's `Accept` asks for it): HTTP requests (recorded by the
//! API's middleware) by method, route template and status with their latency, CA calls'
//! latency by provider, action and outcome, quotes by provider and verdict, operations created
//! and by status, open tickets, step outcomes, and
//! each CA account's pace (calls sent, throttled, the limit its throttling taught, operations
//! waiting and the oldest one's wait), each tenant's webhook backlog (pending, dead, the
//! oldest undelivered event's age), and the watch's passes over the watched orders.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// The methods that get their own label value; any other is `other`, so that clients cannot
/// grow the series.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// A request method as a label value.
pub fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: Arc<str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    provider: String,
    action: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoopLabels {
    r#loop: String,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;
type CallLatency = Family<CallLabels, Histogram, fn() -> Histogram>;

/// Buckets from 0.5 ms to about 16 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: Arc<str>,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuoteLabels {
    provider: String,
    allowed: bool,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    provider: String,
    action: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    /// The providers sharing the CA account (`digicert+geotrust+symantec+thawte`).
    account: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Each tenant's undelivered webhook deliveries, set from the store at every scrape.
#[derive(Default)]
struct WebhookGauges {
    pending: Family<TenantLabels, Gauge>,
    dead: Family<TenantLabels, Gauge>,
    oldest: Family<TenantLabels, FloatGauge>,
}

/// Each CA account's pace, set from [`crate::pacing::Pacing::stats`] at every scrape.
#[derive(Default)]
struct PaceGauges {
    sent: Family<AccountLabels, Gauge>,
    throttled: Family<AccountLabels, Gauge>,
    learnt: Family<AccountLabels, FloatGauge>,
    waiting: Family<AccountLabels, Gauge>,
    oldest: Family<AccountLabels, FloatGauge>,
}

/// The gateway's counters.
pub struct Metrics {
    registry: Registry,
    http: Family<HttpLabels, Counter>,
    http_latency: Latency,
    ca_latency: CallLatency,
    by_status: Family<StatusLabels, Gauge>,
    open_tickets: Gauge,
    stalled: Gauge,
    quotes: Family<QuoteLabels, Counter>,
    restarts: Family<LoopLabels, Counter>,
    operations: Family<ProviderLabels, Counter>,
    steps: Family<StepLabels, Counter>,
    pace: PaceGauges,
    webhooks: WebhookGauges,
    watch: WatchCounters,
    /// When the gauges read from the store were last refreshed.
    store_read: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How often a scrape reads the store, whatever the scrape rate.
pub const STORE_READ_EVERY: Duration = Duration::from_secs(10);

/// The watch's passes over the watched orders.
#[derive(Default)]
struct WatchCounters {
    checked: Counter,
    passes: Counter,
    last_pass: FloatGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let http = Family::<HttpLabels, Counter>::default();
        let quotes = Family::<QuoteLabels, Counter>::default();
        let operations = Family::<ProviderLabels, Counter>::default();
        let steps = Family::<StepLabels, Counter>::default();
        registry.register(
            "certgate_http_requests",
            "HTTP requests by method, route and status",
            http.clone(),
        );
        let http_latency = Latency::new_with_constructor(latency);
        registry.register(
            "certgate_http_request_duration_seconds",
            "HTTP request latency by method and route",
            http_latency.clone(),
        );
        let ca_latency = CallLatency::new_with_constructor(latency);
        registry.register(
            "certgate_ca_call_duration_seconds",
            "CA call latency by provider, action and outcome",
            ca_latency.clone(),
        );
        let by_status = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "certgate_operations",
            "Operations stored, by status",
            by_status.clone(),
        );
        let open_tickets = Gauge::default();
        registry.register(
            "certgate_tickets_open",
            "Manual tickets waiting for a person",
            open_tickets.clone(),
        );
        let restarts = Family::<LoopLabels, Counter>::default();
        registry.register(
            "certgate_background_restarts",
            "Background loops restarted after they died (executor, deliveries, pruner, watch)",
            restarts.clone(),
        );
        let stalled = Gauge::default();
        registry.register(
            "certgate_operations_stalled",
            "Operations not finished, waiting for no person, with nothing scheduled and no live lease: nothing would run them (repaired within a minute; should stay 0)",
            stalled.clone(),
        );
        registry.register(
            "certgate_quotes",
            "Quotes answered, by provider and whether allowed",
            quotes.clone(),
        );
        registry.register(
            "certgate_operations_created",
            "Operations accepted, by provider",
            operations.clone(),
        );
        registry.register(
            "certgate_steps",
            "Step outcomes at the CA, by provider, action and outcome",
            steps.clone(),
        );
        let pace = PaceGauges::default();
        registry.register(
            "certgate_pace_sent_calls",
            "Calls sent to each CA account since the gateway started",
            pace.sent.clone(),
        );
        registry.register(
            "certgate_pace_throttled_calls",
            "Calls each CA account throttled (429, -42, Throttling*) since the gateway started",
            pace.throttled.clone(),
        );
        registry.register(
            "certgate_pace_learnt_calls_per_second",
            "The limit each CA account's throttling taught (0: the declared limits hold)",
            pace.learnt.clone(),
        );
        registry.register(
            "certgate_pace_waiting_operations",
            "Operations waiting for their turn at each CA account",
            pace.waiting.clone(),
        );
        registry.register(
            "certgate_pace_oldest_wait_seconds",
            "How long the longest-waiting operation of each CA account has waited",
            pace.oldest.clone(),
        );
        let webhooks = WebhookGauges::default();
        registry.register(
            "certgate_webhook_pending_deliveries",
            "Webhook deliveries not yet delivered (the backlog), by tenant",
            webhooks.pending.clone(),
        );
        registry.register(
            "certgate_webhook_dead_deliveries",
            "Webhook deliveries given up after webhooks.max_age, awaiting a replay, by tenant",
            webhooks.dead.clone(),
        );
        registry.register(
            "certgate_webhook_oldest_pending_seconds",
            "Age of each tenant's oldest undelivered event",
            webhooks.oldest.clone(),
        );
        let watch = WatchCounters::default();
        registry.register(
            "certgate_watch_checked_orders",
            "Watched orders re-quoted since the gateway started",
            watch.checked.clone(),
        );
        registry.register(
            "certgate_watch_passes",
            "Passes over the watched orders that found work, since the gateway started",
            watch.passes.clone(),
        );
        registry.register(
            "certgate_watch_last_pass_seconds",
            "How long the last pass over the watched orders took",
            watch.last_pass.clone(),
        );
        Metrics {
            registry,
            http,
            http_latency,
            ca_latency,
            by_status,
            open_tickets,
            stalled,
            restarts,
            quotes,
            operations,
            steps,
            pace,
            webhooks,
            watch,
            store_read: std::sync::Mutex::new(None),
        }
    }
}

impl Metrics {
    /// A request answered: `method` is a label value from [`method_label`].
    pub fn http(&self, method: &'static str, route: Arc<str>, status: u16, took: Duration) {
        self.http_latency
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.http
            .get_or_create(&HttpLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// A CA call made, how it ended (`ok` or the failure's kind) and how long it took.
    pub fn ca_call(&self, provider: &str, action: &str, outcome: &str, took: Duration) {
        self.ca_latency
            .get_or_create(&CallLabels {
                provider: provider.into(),
                action: action.into(),
                outcome: outcome.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// Whether the gauges read from the store are due for a refresh (then they count as
    /// refreshed now): once per [`STORE_READ_EVERY`], however many scrapes come.
    pub fn store_due(&self) -> bool {
        let now = std::time::Instant::now();
        let mut last = self.store_read.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if now.duration_since(at) < STORE_READ_EVERY => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    /// Sets the operations by status (every status, 0 when none) and the open tickets.
    pub fn stored(&self, counts: &certgate_store::Counts) {
        let (by_status, open_tickets) = (&counts.operations, counts.open_tickets);
        self.stalled.set(counts.stalled);
        for status in certgate_core::operation::Status::ALL {
            let n = by_status
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            self.by_status
                .get_or_create(&StatusLabels {
                    status: status.as_str().into(),
                })
                .set(n);
        }
        self.open_tickets.set(open_tickets);
    }

    /// A background loop died and is started again.
    pub fn background_restart(&self, name: &str) {
        self.restarts
            .get_or_create(&LoopLabels {
                r#loop: name.into(),
            })
            .inc();
    }

    pub fn quote(&self, provider: &str, allowed: bool) {
        self.quotes
            .get_or_create(&QuoteLabels {
                provider: provider.into(),
                allowed,
            })
            .inc();
    }

    /// A pass over the watched orders re-quoted `checked` of them in `took`.
    pub fn watch_pass(&self, checked: usize, took: Duration) {
        self.watch.checked.inc_by(checked as u64);
        self.watch.passes.inc();
        self.watch.last_pass.set(took.as_secs_f64());
    }

    pub fn operation_created(&self, provider: &str) {
        self.operations
            .get_or_create(&ProviderLabels {
                provider: provider.into(),
            })
            .inc();
    }

    pub fn step(&self, provider: &str, action: &str, outcome: &str) {
        self.steps
            .get_or_create(&StepLabels {
                provider: provider.into(),
                action: action.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Sets the CA accounts' pace figures.
    pub fn pace(&self, accounts: &[crate::pacing::AccountStats]) {
        for a in accounts {
            let l = AccountLabels {
                account: a.account.clone(),
            };
            self.pace.sent.get_or_create(&l).set(a.sent as i64);
            self.pace
                .throttled
                .get_or_create(&l)
                .set(a.throttled as i64);
            self.pace
                .learnt
                .get_or_create(&l)
                .set(a.learnt.unwrap_or(0.0));
            self.pace.waiting.get_or_create(&l).set(a.waiting as i64);
            self.pace
                .oldest
                .get_or_create(&l)
                .set(a.oldest_wait.as_secs_f64());
        }
    }

    /// Sets each tenant's webhook backlog (`tenants` with none show 0) as of `now` (ms).
    pub fn webhooks<'a>(
        &self,
        tenants: impl Iterator<Item = &'a str>,
        backlog: &[certgate_store::Backlog],
        now: i64,
    ) {
        let w = &self.webhooks;
        for tenant in tenants {
            let l = TenantLabels {
                tenant: tenant.into(),
            };
            w.pending.get_or_create(&l).set(0);
            w.dead.get_or_create(&l).set(0);
            w.oldest.get_or_create(&l).set(0.0);
        }
        for b in backlog {
            let l = TenantLabels {
                tenant: b.tenant.to_string(),
            };
            w.pending.get_or_create(&l).set(b.pending);
            w.dead.get_or_create(&l).set(b.dead);
            let age = b.oldest_pending.map_or(0, |t| (now - t).max(0));
            w.oldest.get_or_create(&l).set(age as f64 / 1_000.0);
        }
    }

    /// The exposition: OpenMetrics text, or (`openmetrics` false) the Prometheus text format.
    pub fn render(&self, openmetrics: bool) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        if openmetrics {
            out
        } else {
            prometheus_text(&out)
        }
    }
}

/// OpenMetrics text as the Prometheus text format (0.0.4): no `# EOF` or `# UNIT`, and a
/// counter's `# HELP`/`# TYPE` name its `_total` samples.
fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_read_once_per_interval_whatever_the_scrape_rate() {
        let m = Metrics::default();
        assert!(m.store_due(), "the first scrape reads the store");
        for _ in 0..100 {
            assert!(!m.store_due(), "a scrape within the interval does not");
        }
        *m.store_read.lock().unwrap() = Some(std::time::Instant::now() - STORE_READ_EVERY);
        assert!(m.store_due(), "once the interval passed, one does");
        assert!(!m.store_due());
    }

    #[test]
    fn counters_render_as_openmetrics_text() {
        let m = Metrics::default();
        let ms = Duration::from_millis(3);
        m.http("POST", "/v1/quotes".into(), 200, ms);
        m.http("POST", "/v1/quotes".into(), 200, ms);
        m.ca_call("digicert", "cancel", "ok", ms);
        m.stored(&certgate_store::Counts {
            operations: vec![(certgate_core::operation::Status::Completed, 5)],
            open_tickets: 2,
            stalled: 0,
        });
        m.quote("alibaba", true);
        m.step("digicert", "cancel", "completed");
        let text = m.render(true);
        assert!(
            text.contains(
                r#"certgate_http_requests_total{method="POST",route="/v1/quotes",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"certgate_quotes_total{provider="alibaba",allowed="true"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"certgate_steps_total{provider="digicert",action="cancel",outcome="completed"} 1"#
            ),
            "{text}"
        );
        m.pace(&[crate::pacing::AccountStats {
            account: "digicert+geotrust".into(),
            sent: 7,
            throttled: 1,
            learnt: Some(2.5),
            waiting: 3,
            oldest_wait: std::time::Duration::from_millis(1_500),
        }]);
        let text = m.render(true);
        for line in [
            r#"certgate_pace_sent_calls{account="digicert+geotrust"} 7"#,
            r#"certgate_pace_throttled_calls{account="digicert+geotrust"} 1"#,
            r#"certgate_pace_learnt_calls_per_second{account="digicert+geotrust"} 2.5"#,
            r#"certgate_pace_waiting_operations{account="digicert+geotrust"} 3"#,
            r#"certgate_pace_oldest_wait_seconds{account="digicert+geotrust"} 1.5"#,
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        m.webhooks(
            ["acme", "quiet"].into_iter(),
            &[certgate_store::Backlog {
                tenant: "acme".into(),
                pending: 4,
                dead: 1,
                oldest_pending: Some(10_000),
            }],
            12_500,
        );
        let text = m.render(true);
        for line in [
            r#"certgate_webhook_pending_deliveries{tenant="acme"} 4"#,
            r#"certgate_webhook_dead_deliveries{tenant="acme"} 1"#,
            r#"certgate_webhook_oldest_pending_seconds{tenant="acme"} 2.5"#,
            r#"certgate_webhook_pending_deliveries{tenant="quiet"} 0"#,
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        for line in [
            r#"certgate_http_request_duration_seconds_count{method="POST",route="/v1/quotes"} 2"#,
            r#"certgate_ca_call_duration_seconds_bucket{le="0.004",provider="digicert",action="cancel",outcome="ok"} 1"#,
            r#"certgate_operations{status="completed"} 5"#,
            r#"certgate_operations{status="failed"} 0"#,
            "certgate_tickets_open 2",
            "certgate_operations_stalled 0",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        // The Prometheus text format: counters' metadata names their samples; no EOF.
        let prom = m.render(false);
        assert!(
            prom.contains("# TYPE certgate_http_requests_total counter\n"),
            "{prom}"
        );
        assert!(
            prom.contains("# HELP certgate_http_requests_total HTTP requests"),
            "{prom}"
        );
        assert!(prom.contains("# TYPE certgate_tickets_open gauge\n"));
        assert!(!prom.contains("# EOF"));
        assert_eq!(method_label("FOOBAR1"), "other");
        assert_eq!(method_label("GET"), "GET");
    }
}
