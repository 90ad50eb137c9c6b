//! providers.toml: every provider's common envelope (`kind`, `mode`, `holidays`, `api`) and its
//! plugin's own `settings`, read in two phases, both `deny_unknown_fields`: first the envelope,
//! then the settings by the plugin that the `kind` names. All problems are collected and
//! reported together, each naming the provider and the key. The rest of the gateway's config
//! file (tenants, executor) belongs to the server.

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// How a provider's steps are carried out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Steps the CA's API can perform are automated.
    Api,
    /// Every step is a manual ticket.
    #[default]
    Manual,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Api => "api",
            Mode::Manual => "manual",
        })
    }
}

/// Every provider's table of a config file (`[providers.NAME]`), as read: phase one of the
/// config parses each into a [`ProviderConfig`], phase two the plugin's own settings.
pub type ProviderTables = BTreeMap<String, serde_json::Value>;

/// The envelope every provider has, whatever its kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The plugin (`alibaba`, `digicert`, ...) or `config` for a provider described here alone.
    pub kind: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    /// Dates that are not business days at this CA.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Where the CA's API lives and which credentials to use (required for `mode = "api"`).
    #[serde(default)]
    pub api: Option<ApiConfig>,
    /// The plugin's own settings, read by the plugin (phase two).
    #[serde(default)]
    pub settings: serde_json::Value,
}

/// How long a call to a CA may take by default (`api.timeout_ms`) before it counts as timed out.
pub const DEFAULT_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The CA API a provider talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Which client speaks this API (a config-only provider borrows a plugin's client).
    #[serde(default)]
    pub client: Option<String>,
    pub base_url: String,
    /// Credential name -> `${ENV}` reference.
    #[serde(default)]
    pub credentials: BTreeMap<String, SecretRef>,
    /// How long one call may take before it counts as a (retryable) timeout.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The CA's rate limits for this account; the executor paces its calls to stay within all
    /// of them. Providers that share an account (client, base URL, credentials) share a pace.
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
}

impl ApiConfig {
    /// How long one call may take (`timeout_ms`, else [`DEFAULT_CALL_TIMEOUT`]).
    pub fn call_timeout(&self) -> std::time::Duration {
        self.timeout_ms
            .map_or(DEFAULT_CALL_TIMEOUT, std::time::Duration::from_millis)
    }

    /// Identifies the CA account: the client, where it calls, and with which credentials.
    pub fn account(&self, kind: &str) -> String {
        let vars: Vec<&str> = self.credentials.values().map(|s| s.var.as_str()).collect();
        format!("{}|{}", self.service(kind), vars.join(","))
    }

    /// The CA service this API calls, whatever the credentials: the client and its base URL as
    /// a URL parser reads it (host case, default port and dot segments aside), so that two
    /// spellings of one address are one service. The ids of orders are unique within it.
    pub fn service(&self, kind: &str) -> String {
        let base = url::Url::parse(&self.base_url)
            .map_or_else(|_| self.base_url.clone(), |u| u.as_str().to_owned());
        format!(
            "{}|{}",
            self.client.as_deref().unwrap_or(kind),
            base.trim_end_matches('/')
        )
    }
}

/// At most `requests` calls in any `per_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    pub per_ms: u64,
}

/// A secret's source: `${ENV_VAR}`. The secret itself never sits in the file, so this prints
/// only the variable's name.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub var: String,
}

impl SecretRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        let var = s
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .filter(|v| {
                !v.is_empty()
                    && !v.starts_with(|c: char| c.is_ascii_digit())
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .ok_or_else(|| {
                "must be an ${ENV_VAR} reference: secrets are never written in the config file"
                    .to_owned()
            })?;
        Ok(SecretRef {
            var: var.to_owned(),
        })
    }

    /// The secret, if the variable is set and not empty.
    pub fn resolve(&self) -> Option<String> {
        std::env::var(&self.var).ok().filter(|v| !v.is_empty())
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${{{}}}", self.var)
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("${{{}}}", self.var))
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SecretRef::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One problem in the config: the dotted key (`providers.alibaba.settings.refund_window_days`)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub key: String,
    pub message: String,
}

/// Everything wrong with a config, reported at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub issues: Vec<ConfigIssue>,
}

impl ConfigError {
    pub fn one(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            issues: vec![ConfigIssue {
                key: key.into(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        write!(
            f,
            "invalid provider config ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            write!(f, "\n  - {}: {}", issue.key, issue.message)?;
        }
        Ok(())
    }
}

/// Reads a TOML config file into `T` (the gateway's whole file, or only its providers).
pub fn load_file<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let source = config::File::from(path).format(config::FileFormat::Toml);
    read(source).map_err(|e| ConfigError::one(path.display().to_string(), e))
}

/// Reads TOML text into `T` (tests, embedded defaults).
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    read(config::File::from_str(text, config::FileFormat::Toml))
        .map_err(|e| ConfigError::one("providers.toml", e))
}

fn read<T, S>(source: S) -> Result<T, String>
where
    T: DeserializeOwned,
    S: config::Source + Send + Sync + 'static,
{
    config::Config::builder()
        .add_source(source)
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| e.to_string())
}

/// What a plugin's factory is given about the provider it builds.
#[derive(Debug, Clone, Copy)]
pub struct ProviderContext<'a> {
    pub name: &'a str,
    pub mode: Mode,
    pub api: Option<&'a ApiConfig>,
}

impl ProviderContext<'_> {
    /// The full key of `path` under this provider.
    pub fn key(&self, path: &str) -> String {
        if path.is_empty() {
            format!("providers.{}", self.name)
        } else {
            format!("providers.{}.{path}", self.name)
        }
    }

    pub fn issue(&self, path: &str, message: impl Into<String>) -> ConfigIssue {
        ConfigIssue {
            key: self.key(path),
            message: message.into(),
        }
    }

    /// The `[api]` credentials a client takes: exactly `names`, in that order, or every
    /// problem at once (a missing one, an unknown one).
    pub fn credentials<const N: usize>(
        &self,
        api: &ApiConfig,
        names: [&str; N],
    ) -> Result<[SecretRef; N], Vec<ConfigIssue>> {
        let mut issues: Vec<ConfigIssue> = api
            .credentials
            .keys()
            .filter(|k| !names.contains(&k.as_str()))
            .map(|k| {
                self.issue(
                    &format!("api.credentials.{k}"),
                    format!("unknown credential; this CA takes {}", names.join(", ")),
                )
            })
            .collect();
        let found: Vec<Option<SecretRef>> = names
            .iter()
            .map(|n| {
                let found = api.credentials.get(*n).cloned();
                if found.is_none() {
                    issues.push(self.issue(
                        &format!("api.credentials.{n}"),
                        "is required (as an ${ENV} reference)",
                    ));
                }
                found
            })
            .collect();
        match found.into_iter().collect::<Option<Vec<_>>>() {
            Some(all) if issues.is_empty() => all.try_into().map_err(|_| issues),
            _ => Err(issues),
        }
    }

    /// Phase two: the plugin's settings, absent meaning "all defaults".
    pub fn settings<T: DeserializeOwned>(
        &self,
        value: serde_json::Value,
    ) -> Result<T, Vec<ConfigIssue>> {
        let value = match value {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            v => v,
        };
        deserialize_all(value).map_err(|problems| {
            problems
                .into_iter()
                .map(|(path, message)| {
                    let path = if path.is_empty() {
                        "settings".to_owned()
                    } else {
                        format!("settings.{path}")
                    };
                    self.issue(&path, message)
                })
                .collect()
        })
    }
}

/// Deserializes `value`, returning the dotted path of the offending key on error. An unknown
/// key is named in the path itself.
pub fn deserialize_at<T: DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = humane(&e.into_inner().to_string());
        (crate::validation::field_of(&path, &message), message)
    })
}

/// Deserializes `value`, reporting every bad key, not only the first: each one found is taken
/// out and the rest read again (a key reported once is not reported again as missing).
pub fn deserialize_all<T: DeserializeOwned>(
    mut value: serde_json::Value,
) -> Result<T, Vec<(String, String)>> {
    let mut problems: Vec<(String, String)> = Vec::new();
    // Each round takes one key out; a table has few.
    for _ in 0..64 {
        match deserialize_at::<T>(value.clone()) {
            Ok(t) if problems.is_empty() => return Ok(t),
            Ok(_) => return Err(problems),
            Err((path, message)) => {
                let seen = problems.iter().any(|(p, _)| *p == path);
                if !seen {
                    problems.push((path.clone(), message));
                }
                if seen || !remove(&mut value, &path) {
                    return Err(problems);
                }
            }
        }
    }
    Err(problems)
}

/// Takes the key at dotted `path` (`a.b`, `a[2]`) out of `value`; false if it is not there.
fn remove(value: &mut serde_json::Value, path: &str) -> bool {
    let mut parts: Vec<&str> = path
        .split(['.', '['])
        .map(|p| p.trim_end_matches(']'))
        .filter(|p| !p.is_empty())
        .collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut at = value;
    for p in parts {
        at = match at {
            serde_json::Value::Object(m) => match m.get_mut(p) {
                Some(v) => v,
                None => return false,
            },
            serde_json::Value::Array(a) => match p.parse::<usize>().ok().and_then(|i| a.get_mut(i))
            {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match at {
        serde_json::Value::Object(m) => m.remove(last).is_some(),
        serde_json::Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// serde's and chrono's wording, in words a person reading a config file understands.
fn humane(message: &str) -> String {
    let unsigned = [
        "expected u8",
        "expected u16",
        "expected u32",
        "expected u64",
        "expected usize",
    ];
    if message.starts_with("invalid value: integer `-")
        && unsigned.iter().any(|u| message.contains(u))
    {
        return "must not be negative (a whole number, 0 or more)".into();
    }
    if message.starts_with("invalid type:") && unsigned.iter().any(|u| message.contains(u)) {
        let found = message
            .trim_start_matches("invalid type: ")
            .split(", expected")
            .next()
            .unwrap_or("something else");
        return format!("must be a whole number (0 or more), not {found}");
    }
    if [
        "input is out of range",
        "premature end of input",
        "input contains invalid characters",
        "trailing input",
    ]
    .iter()
    .any(|m| message.contains(m))
    {
        return format!("must be a date like 2026-12-25 ({message})");
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read only to be checked
    struct Settings {
        window_days: u32,
        #[serde(default)]
        holidays: Vec<chrono::NaiveDate>,
        #[serde(default)]
        name: String,
    }

    #[test]
    fn every_bad_key_is_reported_in_words_a_person_understands() {
        let value = serde_json::json!({
            "window_days": -3,
            "holidays": ["2026-12-25", "2026-02-30"],
            "colour": "blue",
            "name": 7
        });
        let problems = deserialize_all::<Settings>(value).unwrap_err();
        let find = |key: &str| {
            problems
                .iter()
                .find(|(p, _)| p == key)
                .map(|(_, m)| m.clone())
                .unwrap_or_else(|| panic!("{key} in {problems:?}"))
        };
        assert_eq!(
            find("window_days"),
            "must not be negative (a whole number, 0 or more)"
        );
        assert!(find("holidays[1]").starts_with("must be a date like 2026-12-25"));
        assert!(find("colour").contains("unknown field"));
        assert!(find("name").contains("invalid type"));
        assert_eq!(problems.len(), 4, "{problems:?}");
        let ok = deserialize_all::<Settings>(serde_json::json!({"window_days": 3}));
        assert_eq!(ok.unwrap().window_days, 3);
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Providers {
        providers: ProviderTables,
    }

    #[test]
    fn secrets_are_env_references_only() {
        assert_eq!(
            SecretRef::parse("${DIGICERT_KEY}").unwrap().var,
            "DIGICERT_KEY"
        );
        for bad in ["hunter2", "${}", "${1ABC}", "${A-B}", "$DIGICERT_KEY"] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
        let r = SecretRef::parse("${DIGICERT_KEY}").unwrap();
        assert_eq!(format!("{r:?}"), "${DIGICERT_KEY}");
    }

    #[test]
    fn envelope_reads_from_toml() {
        let cfg: Providers = parse_toml(
            r#"
            [providers.acme]
            kind = "config"
            mode = "api"
            holidays = ["2026-12-25"]
            api = { base_url = "https://ca.example/v2", credentials = { key = "${ACME_KEY}" } }
            settings = { anything = 1 }
            "#,
        )
        .unwrap();
        let env: ProviderConfig = deserialize_at(cfg.providers["acme"].clone()).unwrap();
        assert_eq!(env.kind, "config");
        assert_eq!(env.mode, Mode::Api);
        assert_eq!(env.holidays, ["2026-12-25".parse::<NaiveDate>().unwrap()]);
        assert_eq!(env.api.unwrap().credentials["key"].var, "ACME_KEY");
        assert_eq!(env.settings["anything"], 1);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_their_key() {
        let v = serde_json::json!({"kind": "x", "colour": "blue"});
        let (path, msg) = deserialize_at::<ProviderConfig>(v).unwrap_err();
        assert_eq!(path, "colour");
        assert!(msg.contains("unknown field"));
        let v = serde_json::json!({"kind": "x", "holidays": ["2026-02-30"]});
        let (path, _) = deserialize_at::<ProviderConfig>(v).unwrap_err();
        assert_eq!(path, "holidays[0]");
        let v = serde_json::json!({"kind": "x", "api": {"base_url": "u", "credentials": {"k": "plain"}}});
        let (path, msg) = deserialize_at::<ProviderConfig>(v).unwrap_err();
        assert_eq!(path, "api.credentials.k");
        assert!(msg.contains("${ENV_VAR}"));
    }

    #[test]
    fn credentials_are_exactly_the_ones_a_client_takes() {
        let api: ApiConfig = deserialize_at(serde_json::json!({
            "base_url": "https://ca.example",
            "credentials": {"login": "${A}", "colour": "${B}"}
        }))
        .unwrap();
        let ctx = ProviderContext {
            name: "x",
            mode: Mode::Api,
            api: Some(&api),
        };
        let issues = ctx.credentials(&api, ["login", "password"]).unwrap_err();
        let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "providers.x.api.credentials.colour",
                "providers.x.api.credentials.password"
            ]
        );
        let ok: ApiConfig = deserialize_at(serde_json::json!({"base_url": "https://ca.example", "credentials": {"b": "${B}", "a": "${A}"}})).unwrap();
        let [a, b] = ctx.credentials(&ok, ["a", "b"]).unwrap();
        assert_eq!((a.var.as_str(), b.var.as_str()), ("A", "B"));
    }

    #[test]
    fn one_service_however_its_address_is_written() {
        let api = |base: &str| ApiConfig {
            client: Some("digicert".into()),
            base_url: base.into(),
            credentials: BTreeMap::new(),
            timeout_ms: None,
            rate_limits: Vec::new(),
        };
        let one = api("http://localhost:8443/services/v2").service("x");
        for same in [
            "http://LOCALHOST:8443/services/v2/",
            "http://localhost:8443/services/x/../v2",
            "HTTP://localhost:8443/services/./v2",
        ] {
            assert_eq!(api(same).service("x"), one, "{same}");
        }
        assert_ne!(api("http://localhost:8443/services/v3").service("x"), one);
    }

    #[test]
    fn unknown_top_level_keys_are_refused() {
        let err = parse_toml::<Providers>("[server]\nport = 1\n").unwrap_err();
        assert!(err.to_string().contains("server"), "{err}");
    }

    #[test]
    fn malformed_toml_is_an_error() {
        assert!(parse_toml::<Providers>("[providers.x\n").is_err());
    }
}
