//! Tenants and their API keys (kept only as digests), built at start from `[[tenants]]` and
//! `CERTGATE_API_KEY`; a key variable that is not set stops the start with its name.

use crate::auth::ApiKeys;
use certgate_core::config::{ConfigError, ConfigIssue};
use certgate_engine::config::TenantConfig;
use certgate_engine::tenants::{Tenant, Tenants, Webhook};
use sha2::{Digest, Sha256};

/// Keys shorter than this are logged as a warning at start.
pub const SHORT_KEY: usize = 16;

/// Builds the tenants and their keys. `default_key` (from `CERTGATE_API_KEY`) makes the
/// tenant `default`, whose reseller username is `default_username`. A key that two tenants
/// share is refused, naming both; a key shorter than [`SHORT_KEY`] characters is logged as
/// a warning.
pub fn from_config(
    configs: &[TenantConfig],
    default_key: Option<&str>,
    default_username: &str,
) -> Result<(Tenants, ApiKeys), ConfigError> {
    let mut tenants = Tenants::default();
    let mut keys = ApiKeys::default();
    let mut issues: Vec<ConfigIssue> = Vec::new();
    let issue = |issues: &mut Vec<ConfigIssue>, key: String, message: String| {
        issues.push(ConfigIssue { key, message })
    };
    // Every key seen: its digest, the tenant it names, where it was configured.
    let mut seen: Vec<([u8; 32], String, String)> = Vec::new();
    let mut accept = |issues: &mut Vec<ConfigIssue>, tenant: &str, at: String, key: &str| {
        // As a bearer key is read: without the whitespace around it.
        let key = key.trim();
        if key.is_empty() {
            issues.push(ConfigIssue {
                key: at,
                message: "is only whitespace: a key must have characters".into(),
            });
            return;
        }
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if let Some((_, other, other_at)) =
            seen.iter().find(|(d, t, _)| *d == digest && t != tenant)
        {
            issues.push(ConfigIssue {
                key: at,
                message: format!(
                    "is the same key as tenant `{other}`'s ({other_at}): tenants `{tenant}` and `{other}` would act as each other; give each tenant its own key"
                ),
            });
            return;
        }
        if key.chars().count() < SHORT_KEY {
            tracing::warn!(tenant, key = %at, "an API key shorter than {SHORT_KEY} characters is easy to guess: use e.g. openssl rand -hex 32");
        }
        seen.push((digest, tenant.to_owned(), at));
        keys.add(tenant, key);
    };
    if let Some(key) = default_key {
        accept(&mut issues, "default", "CERTGATE_API_KEY".into(), key);
        tenants.insert(Tenant {
            id: "default".into(),
            reseller_username: default_username.into(),
            webhook: None,
        });
    }
    for (i, t) in configs.iter().enumerate() {
        let at = |k: &str| format!("tenants[{i}].{k}");
        if t.id.trim().is_empty() {
            issue(&mut issues, at("id"), "must not be empty".into());
        } else if tenants.get(t.id.as_str()).is_some() {
            issue(&mut issues, at("id"), format!("`{}` is used twice", t.id));
        }
        let configured = t.api_key.iter().map(|k| (at("api_key"), k)).chain(
            t.api_keys
                .iter()
                .enumerate()
                .map(|(j, k)| (at(&format!("api_keys[{j}]")), k)),
        );
        let mut any = false;
        for (key_at, secret) in configured {
            any = true;
            match secret.resolve() {
                Some(key) => accept(&mut issues, &t.id, key_at, &key),
                None => issue(
                    &mut issues,
                    key_at,
                    format!("${{{}}} is not set in the environment", secret.var),
                ),
            }
        }
        if !any {
            issue(
                &mut issues,
                at("api_keys"),
                "is required: the tenant's API key (`api_key = \"${VAR}\"`, or several in `api_keys`)".into(),
            );
        }
        let webhook = match (&t.webhook_url, &t.webhook_secret) {
            (None, None) => None,
            (Some(url), Some(secret)) => {
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    issue(
                        &mut issues,
                        at("webhook_url"),
                        "must be an http(s) URL".into(),
                    );
                }
                match secret.resolve() {
                    Some(secret) => Some(Webhook {
                        url: url.clone(),
                        secret,
                    }),
                    None => {
                        issue(
                            &mut issues,
                            at("webhook_secret"),
                            format!("${{{}}} is not set in the environment", secret.var),
                        );
                        None
                    }
                }
            }
            (Some(_), None) => {
                issue(
                    &mut issues,
                    at("webhook_secret"),
                    "is required with webhook_url: webhooks are always signed".into(),
                );
                None
            }
            (None, Some(_)) => {
                issue(
                    &mut issues,
                    at("webhook_url"),
                    "is required with webhook_secret".into(),
                );
                None
            }
        };
        tenants.insert(Tenant {
            id: t.id.as_str().into(),
            reseller_username: t.reseller_username.clone(),
            webhook,
        });
    }
    if issues.is_empty() {
        Ok((tenants, keys))
    } else {
        Err(ConfigError { issues })
    }
}
