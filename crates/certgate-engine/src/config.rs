//! The engine's settings: the executor, webhook delivery, event retention, the watch, the
//! helpdesk and each tenant's section, as read from the config file (`deny_unknown_fields`).

use certgate_core::config::SecretRef;
use certgate_core::event::{Backoff, DeliveryPolicy};
use certgate_core::lifecycle::RetryPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One reseller using the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    /// The tenant's API key, from the environment.
    #[serde(default)]
    pub api_key: Option<SecretRef>,
    /// More keys of the tenant, all valid at once (rotation with overlap).
    #[serde(default)]
    pub api_keys: Vec<SecretRef>,
    /// The reseller's username at the platforms (manual tickets carry it, RSL-MANUAL).
    pub reseller_username: String,
    /// The tenant's own CA accounts: `[tenants.credentials.<provider>]` with the keys of that
    /// provider's `[api] credentials` (or of the provider whose API a brand calls through,
    /// `digicert` for geotrust, thawte and symantec).
    #[serde(default)]
    pub credentials: BTreeMap<String, BTreeMap<String, SecretRef>>,
    /// Where every event of the tenant's operations is POSTed.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The key of the webhooks' HMAC signature.
    #[serde(default)]
    pub webhook_secret: Option<SecretRef>,
}

/// How the operation executor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    /// Operations run at once per gateway instance (each waiting on a CA holds a task, not a
    /// thread).
    pub workers: usize,
    /// How long a claimed operation stays leased without a heartbeat.
    pub lease_ms: u64,
    /// How often an idle worker looks for due work.
    pub poll_ms: u64,
    /// Failed tries (the CA unreachable, an answer lost, a 5xx) before a step gives up.
    /// Throttling is never counted.
    pub max_attempts: u32,
    /// First retry delay; doubles each try, with jitter, up to `backoff_max_ms`.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// How often a step awaiting the CA or a confirmation is checked.
    pub recheck_ms: u64,
    /// An unconfirmed revocation raises `operation.attention_needed` this many business days
    /// before the quote's `submit_by`.
    pub attention_business_days: u32,
}

impl ExecutorConfig {
    /// The lifecycle's retry settings.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_tries: self.max_attempts.max(1),
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
            recheck: Duration::from_millis(self.recheck_ms),
            attention_business_days: self.attention_business_days,
        }
    }
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            workers: 256,
            lease_ms: 30_000,
            poll_ms: 200,
            max_attempts: 8,
            backoff_base_ms: 1_000,
            backoff_max_ms: 300_000,
            recheck_ms: 60_000,
            attention_business_days: 2,
        }
    }
}

/// How events are delivered to webhooks (and new tickets to the helpdesk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// How long a delivery is retried before it is `dead` (then listed and replayable).
    pub max_age_hours: u32,
    /// First retry delay; doubles each attempt, with jitter, up to `backoff_max_ms`.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// How long one attempt may take (connecting included) before it counts as failed.
    pub timeout_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            max_age_hours: 72,
            backoff_base_ms: 1_000,
            backoff_max_ms: 3_600_000,
            timeout_ms: 10_000,
        }
    }
}

impl WebhooksConfig {
    /// The retry schedule of a delivery.
    pub fn policy(&self) -> DeliveryPolicy {
        DeliveryPolicy {
            backoff: Backoff {
                base: Duration::from_millis(self.backoff_base_ms.max(1)),
                max: Duration::from_millis(self.backoff_max_ms.max(self.backoff_base_ms).max(1)),
            },
            max_age: Duration::from_secs(u64::from(self.max_age_hours.max(1)) * 3_600),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// How long the event feed keeps events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Events (and finished deliveries) older than this are forgotten; pending deliveries and
    /// their events are kept until they finish.
    pub retention_days: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig { retention_days: 30 }
    }
}

impl EventsConfig {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days.max(1)) * 86_400)
    }
}

/// How watched orders are re-quoted, and how often the refund ledger looks for overdue
/// refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// `order.refund_window_closing` is raised this many business days before `submit_by`.
    pub notice_business_days: u32,
    /// Every watched order is quoted again at least this often (and at its notice and
    /// deadline).
    pub recheck_hours: u32,
    /// How often the gateway looks for watched orders due and refunds overdue.
    pub poll_ms: u64,
    /// Orders checked per transaction.
    pub batch: u32,
    /// Batches checked at once by one gateway.
    pub workers: u32,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            notice_business_days: 3,
            recheck_hours: 24,
            poll_ms: 60_000,
            batch: 500,
            workers: 2,
        }
    }
}

impl WatchConfig {
    pub fn settings(&self) -> certgate_core::watch::Settings {
        certgate_core::watch::Settings {
            notice_business_days: self.notice_business_days,
            recheck: Duration::from_secs(u64::from(self.recheck_hours.max(1)) * 3_600),
        }
    }

    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms.max(1))
    }
}

/// An outside helpdesk: each new ticket is POSTed there as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelpdeskConfig {
    pub url: String,
    /// Signs the POST like a webhook, when given.
    #[serde(default)]
    pub secret: Option<SecretRef>,
}
