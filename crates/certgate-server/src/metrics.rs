//! `GET /metrics`: counters in the Prometheus (OpenMetrics) text format: HTTP requests by
//! route and status, quotes by provider and verdict, operations created, and step outcomes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
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

/// The gateway's counters.
pub struct Metrics {
    registry: Registry,
    http: Family<HttpLabels, Counter>,
    quotes: Family<QuoteLabels, Counter>,
    operations: Family<ProviderLabels, Counter>,
    steps: Family<StepLabels, Counter>,
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
        Metrics {
            registry,
            http,
            quotes,
            operations,
            steps,
        }
    }
}

impl Metrics {
    pub fn http(&self, method: &str, route: &str, status: u16) {
        self.http
            .get_or_create(&HttpLabels {
                method: method.into(),
                route: route.into(),
                status,
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

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_openmetrics_text() {
        let m = Metrics::default();
        m.http("POST", "/v1/quotes", 200);
        m.http("POST", "/v1/quotes", 200);
        m.quote("alibaba", true);
        m.step("digicert", "cancel", "completed");
        let text = m.render();
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
        assert!(text.ends_with("# EOF\n"));
    }
}
