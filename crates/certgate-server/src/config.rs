//! The gateway's config file: the providers (built by core's registry), the tenants, the HTTP
//! edge's limits, the executor's timings, webhook deliveries, the event feed's retention, the
//! watch over watched orders, the desk and an optional outside helpdesk. Every table is
//! `deny_unknown_fields`. The engine's own sections are defined in [`certgate_engine::config`].

use certgate_core::config::{self, ConfigError, ConfigIssue, ProviderTables, SecretRef};
pub use certgate_engine::config::{
    EventsConfig, ExecutorConfig, HelpdeskConfig, TenantConfig, WatchConfig, WebhooksConfig,
};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub providers: ProviderTables,
    /// Resellers. Besides these, `CERTGATE_API_KEY` (if set) is the key of tenant `default`.
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    #[serde(default)]
    pub executor: ExecutorConfig,
    /// An outside helpdesk that receives every manual ticket (besides the built-in queue).
    #[serde(default)]
    pub helpdesk: Option<HelpdeskConfig>,
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    #[serde(default)]
    pub events: EventsConfig,
    #[serde(default)]
    pub watch: WatchConfig,
    /// The support desk's users (`/desk`).
    #[serde(default)]
    pub desk_users: Vec<DeskUserConfig>,
    /// The HTTP edge: timeouts, limits, the metrics key.
    #[serde(default)]
    pub server: ServerConfig,
    /// The support desk's sessions and cookies.
    #[serde(default)]
    pub desk: DeskConfig,
}

/// The HTTP edge: what a client may hold open, for how long, and how often it may guess.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// A connection that has not sent a request's headers this long after its accept (or the
    /// end of its previous request) is closed.
    pub header_read_timeout_ms: u64,
    /// A request not answered by then is a 503 problem.
    pub request_timeout_ms: u64,
    /// `POST /v1/sweep`'s own request timeout.
    pub sweep_timeout_ms: u64,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// After SIGTERM, open requests get this long; then they are closed and the process exits.
    pub shutdown_grace_ms: u64,
    /// When given, `/metrics` needs `Authorization: Bearer` with this key.
    pub metrics_key: Option<SecretRef>,
    /// Sweeps one tenant may run at once (more: 429 with `Retry-After`).
    pub sweeps_per_tenant: u32,
    /// Failed authentications from one client address within a minute, after which every
    /// attempt from it is a 429 until the minute has passed (the API and the desk apart).
    pub failed_auth_per_minute: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            sweep_timeout_ms: 120_000,
            max_connections: 10_000,
            shutdown_grace_ms: 30_000,
            metrics_key: None,
            sweeps_per_tenant: 2,
            failed_auth_per_minute: 10,
        }
    }
}

impl ServerConfig {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn sweep_timeout(&self) -> Duration {
        Duration::from_millis(self.sweep_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

/// The support desk's sessions and cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeskConfig {
    /// Session cookies are `Secure` with the `__Host-` prefix whatever the proxy says (set it
    /// when the desk is served over HTTPS).
    pub secure_cookies: bool,
    /// A session ends after this long without a request.
    pub idle_minutes: u32,
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            secure_cookies: false,
            idle_minutes: 30,
        }
    }
}

/// A person who works the manual tickets of some tenants at `/desk`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeskUserConfig {
    /// Shown on the desk and recorded in the audit log (`desk:<name>`).
    pub name: String,
    /// The tenants whose tickets this user sees and resolves.
    pub tenants: Vec<String>,
    /// The key the user logs in with, from the environment.
    pub key: SecretRef,
}

impl FileConfig {
    /// Every setting of `[executor]`, `[webhooks]`, `[events]`, `[watch]`, `[server]` and
    /// `[desk]` that would make the gateway panic or spin (a zero interval, a lease too short
    /// to renew, a backoff that never grows), and a `metrics_key` whose variable is not set.
    pub fn setting_issues(&self) -> Vec<ConfigIssue> {
        const SECOND: u64 = 1_000;
        const HOUR: u64 = 3_600 * SECOND;
        const DAY: u64 = 24 * HOUR;
        let (e, w, h, v) = (&self.executor, &self.webhooks, &self.watch, &self.server);
        // (key, value, least, most, why the least): beyond the most, a duration overflows
        // a date or a lease, or a count a semaphore or the memory.
        let bounds: [(&str, u64, u64, u64, &str); 25] = [
            (
                "executor.workers",
                e.workers as u64,
                1,
                100_000,
                "operations run at once",
            ),
            (
                "executor.lease_ms",
                e.lease_ms,
                300,
                DAY,
                "a lease is renewed every third of it",
            ),
            ("executor.poll_ms", e.poll_ms, 1, HOUR, "0 would spin"),
            (
                "executor.max_attempts",
                e.max_attempts.into(),
                1,
                1_000,
                "a step is tried at least once",
            ),
            (
                "executor.backoff_base_ms",
                e.backoff_base_ms,
                1,
                7 * DAY,
                "0 would retry at once, forever",
            ),
            (
                "executor.backoff_max_ms",
                e.backoff_max_ms,
                e.backoff_base_ms.max(1),
                7 * DAY,
                "at least backoff_base_ms",
            ),
            (
                "executor.recheck_ms",
                e.recheck_ms,
                1,
                DAY,
                "0 would read the CA without pause",
            ),
            (
                "executor.attention_business_days",
                e.attention_business_days.into(),
                0,
                60,
                "business days",
            ),
            (
                "webhooks.max_age_hours",
                w.max_age_hours.into(),
                1,
                24 * 90,
                "a delivery is tried for at least an hour",
            ),
            (
                "webhooks.backoff_base_ms",
                w.backoff_base_ms,
                1,
                DAY,
                "0 would retry at once",
            ),
            (
                "webhooks.backoff_max_ms",
                w.backoff_max_ms,
                w.backoff_base_ms.max(1),
                DAY,
                "at least backoff_base_ms",
            ),
            (
                "webhooks.timeout_ms",
                w.timeout_ms,
                1,
                10 * 60 * SECOND,
                "an attempt needs time",
            ),
            (
                "events.retention_days",
                self.events.retention_days.into(),
                1,
                3_650,
                "events are kept a day at least",
            ),
            (
                "watch.notice_business_days",
                h.notice_business_days.into(),
                0,
                60,
                "business days",
            ),
            (
                "watch.recheck_hours",
                h.recheck_hours.into(),
                1,
                24 * 366,
                "an hour at least",
            ),
            ("watch.poll_ms", h.poll_ms, 1, DAY, "0 would spin"),
            (
                "watch.batch",
                h.batch.into(),
                1,
                100_000,
                "orders per transaction",
            ),
            ("watch.workers", h.workers.into(), 1, 64, "batches at once"),
            (
                "server.header_read_timeout_ms",
                v.header_read_timeout_ms,
                100,
                10 * 60 * SECOND,
                "a client needs time to send its headers",
            ),
            (
                "server.request_timeout_ms",
                v.request_timeout_ms,
                100,
                HOUR,
                "a request needs time",
            ),
            (
                "server.sweep_timeout_ms",
                v.sweep_timeout_ms,
                100,
                HOUR,
                "a sweep needs time",
            ),
            (
                "server.max_connections",
                v.max_connections as u64,
                1,
                1_000_000,
                "connections at once",
            ),
            (
                "server.shutdown_grace_ms",
                v.shutdown_grace_ms,
                0,
                HOUR,
                "milliseconds",
            ),
            (
                "server.sweeps_per_tenant",
                v.sweeps_per_tenant.into(),
                1,
                64,
                "sweeps at once",
            ),
            (
                "server.failed_auth_per_minute",
                v.failed_auth_per_minute.into(),
                1,
                100_000,
                "failures before the limit",
            ),
        ];
        let mut issues: Vec<ConfigIssue> = bounds
            .into_iter()
            .chain([(
                "desk.idle_minutes",
                u64::from(self.desk.idle_minutes),
                1,
                7 * 24 * 60,
                "a session idles a minute at least",
            )])
            .filter_map(|(key, value, least, most, why)| {
                let message = if value < least {
                    format!("must be at least {least} ({why}), not {value}")
                } else if value > most {
                    format!("must be at most {most}, not {value}")
                } else {
                    return None;
                };
                Some(ConfigIssue {
                    key: key.into(),
                    message,
                })
            })
            .collect();
        if let Some(key) = &v.metrics_key {
            if key.resolve().is_none() {
                issues.push(ConfigIssue {
                    key: "server.metrics_key".into(),
                    message: format!("${{{}}} is not set in the environment", key.var),
                });
            }
        }
        issues
    }
}

/// Reads a config file.
pub fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    config::load_file(path)
}

/// Reads config text (tests, the embedded default).
pub fn parse_toml(text: &str) -> Result<FileConfig, ConfigError> {
    config::parse_toml(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_file_reads_and_unknown_keys_are_refused() {
        let cfg = parse_toml(
            "[executor]\nmax_attempts = 3\n[[tenants]]\nid = \"a\"\napi_key = \"${A_KEY}\"\nreseller_username = \"a-r\"\n",
        )
        .unwrap();
        assert_eq!(cfg.executor.max_attempts, 3);
        assert_eq!(cfg.executor.lease_ms, 30_000);
        assert_eq!(cfg.tenants[0].api_key.as_ref().unwrap().var, "A_KEY");
        let cfg = parse_toml(
            "[[tenants]]\nid = \"a\"\napi_keys = [\"${A1}\", \"${A2}\"]\nreseller_username = \"a-r\"\n[tenants.credentials.digicert]\napi_key = \"${A_DC}\"\n",
        )
        .unwrap();
        assert_eq!(cfg.tenants[0].api_keys.len(), 2);
        assert_eq!(
            cfg.tenants[0].credentials["digicert"]["api_key"].var,
            "A_DC"
        );
        let err = parse_toml("[[tenants]]\nid = \"a\"\nreseller_username = \"r\"\n[tenants.credentials.digicert]\napi_key = \"inline-secret\"\n").unwrap_err();
        assert!(err.to_string().contains("ENV_VAR"), "{err}");
        let err = parse_toml("[executor]\nthreads = 3\n").unwrap_err();
        assert!(err.to_string().contains("threads"), "{err}");
        assert_eq!(cfg.webhooks, WebhooksConfig::default());
        assert_eq!(cfg.events.retention_days, 30);
        assert_eq!(cfg.watch.notice_business_days, 3);
        let cfg = parse_toml("[watch]\nnotice_business_days = 5\npoll_ms = 100\n").unwrap();
        assert_eq!(cfg.watch.settings().notice_business_days, 5);
        assert_eq!(cfg.watch.poll(), Duration::from_millis(100));
        let err = parse_toml("[watch]\nnotice_days = 5\n").unwrap_err();
        assert!(err.to_string().contains("notice_days"), "{err}");
        let cfg = parse_toml("[webhooks]\nmax_age_hours = 1\ntimeout_ms = 500\n").unwrap();
        assert_eq!(cfg.webhooks.policy().max_age, Duration::from_secs(3_600));
        assert_eq!(cfg.webhooks.timeout(), Duration::from_millis(500));
        let err = parse_toml("[webhooks]\nretries = 3\n").unwrap_err();
        assert!(err.to_string().contains("retries"), "{err}");
        let err = parse_toml("[server]\nport = 1\n").unwrap_err();
        assert!(err.to_string().contains("server"), "{err}");
        assert!(parse_toml("").unwrap().setting_issues().is_empty());
    }

    #[test]
    fn timings_that_would_panic_or_spin_are_refused_all_at_once() {
        let cfg = parse_toml(
            "[executor]\nlease_ms = 2\npoll_ms = 0\nbackoff_base_ms = 500\nbackoff_max_ms = 10\n[webhooks]\ntimeout_ms = 0\n[watch]\nbatch = 0\n",
        )
        .unwrap();
        let keys: Vec<String> = cfg.setting_issues().into_iter().map(|i| i.key).collect();
        assert_eq!(
            keys,
            [
                "executor.lease_ms",
                "executor.poll_ms",
                "executor.backoff_max_ms",
                "webhooks.timeout_ms",
                "watch.batch"
            ]
        );
    }

    #[test]
    fn values_that_would_overflow_a_date_or_the_memory_are_refused() {
        let cfg = parse_toml(
            "[executor]\nworkers = 2305843009213693952\nlease_ms = 9223372036854775807\n\
             backoff_base_ms = 9223372036854775807\nbackoff_max_ms = 9223372036854775807\n\
             attention_business_days = 4294967295\n[webhooks]\nmax_age_hours = 4294967295\n\
             [watch]\nworkers = 4294967295\nrecheck_hours = 4294967295\nnotice_business_days = 4294967295\n",
        )
        .unwrap();
        let issues = cfg.setting_issues();
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "executor.workers",
                "executor.lease_ms",
                "executor.backoff_base_ms",
                "executor.backoff_max_ms",
                "executor.attention_business_days",
                "webhooks.max_age_hours",
                "watch.notice_business_days",
                "watch.recheck_hours",
                "watch.workers",
            ]
        );
        assert!(
            issues[1].message.starts_with("must be at most 86400000"),
            "{issues:?}"
        );
    }
}
