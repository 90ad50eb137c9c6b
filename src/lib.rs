//! The `certgate` binary's library half: which plugins exist, where the provider config comes
//! from, the store URL the `--database` flag accepts, and the commands that work offline
//! (sweep, orders import, refunds report). `main.rs` is the CLI around it.

pub mod orders;
pub mod refunds;
pub mod sweep;

use certgate_core::config::ConfigError;
use certgate_core::{Registry, RegistryBuilder};
use certgate_server::config::{self, FileConfig};
use certgate_server::desk::DeskUsers;
use certgate_server::tenants;
use certgate_server::Live;
use std::path::{Path, PathBuf};

/// The providers.toml shipped in the repository, compiled in as the default.
pub const DEFAULT_PROVIDERS_TOML: &str = include_str!("../providers.toml");

/// Every plugin kind and client this build knows, plus `config` with the reseller platform's
/// presets.
pub fn registry_builder() -> RegistryBuilder {
    let mut builder = RegistryBuilder::default();
    certgate_platform::register(&mut builder);
    certgate_alibaba::register(&mut builder);
    certgate_digicert::register(&mut builder);
    certgate_sectigo::register(&mut builder);
    certgate_geotrust::register(&mut builder);
    certgate_thawte::register(&mut builder);
    certgate_trustwave::register(&mut builder);
    certgate_opensrs::register(&mut builder);
    builder
}

/// The providers of the built-in providers.toml.
pub fn default_registry() -> Result<Registry, ConfigError> {
    registry_builder().build(&config::parse_toml(DEFAULT_PROVIDERS_TOML)?.providers)
}

/// Where the provider config was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    /// `./providers.toml` was absent: the copy compiled into the binary.
    Embedded,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(p) => write!(f, "{}", p.display()),
            ConfigSource::Embedded => f.write_str("the built-in providers.toml"),
        }
    }
}

/// The loaded config: its providers built, the rest (tenants, executor, helpdesk) as read.
#[derive(Debug)]
pub struct Loaded {
    pub registry: Registry,
    pub file: FileConfig,
    pub source: ConfigSource,
}

/// Reads the config file: `path` if given, else `./providers.toml` if present, else the
/// built-in default.
fn read(path: Option<&Path>) -> Result<(FileConfig, ConfigSource), ConfigError> {
    let default = Path::new("providers.toml");
    Ok(match path {
        Some(p) => (config::load_file(p)?, ConfigSource::File(p.to_owned())),
        None if default.exists() => (
            config::load_file(default)?,
            ConfigSource::File(default.to_owned()),
        ),
        None => (
            config::parse_toml(DEFAULT_PROVIDERS_TOML)?,
            ConfigSource::Embedded,
        ),
    })
}

/// Loads the config (see `read`) and builds the providers.
pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
    let (file, source) = read(path)?;
    let registry = registry_builder().build(&file.providers)?;
    Ok(Loaded {
        registry,
        file,
        source,
    })
}

/// What `serve` runs on: the config read and everything in it checked together (providers,
/// tenants with their keys and CA accounts, the desk's users), every problem of all of them at
/// once. `default_key` is `CERTGATE_API_KEY` (tenant `default`, reseller `username`).
pub fn load_live(
    path: Option<&Path>,
    default_key: Option<&str>,
    username: &str,
) -> Result<(Live, FileConfig, ConfigSource), ConfigError> {
    let (file, source) = read(path)?;
    let timing = file.setting_issues();
    let live = match registry_builder().build(&file.providers) {
        Ok(registry) => {
            match Live::build(
                registry,
                &file.tenants,
                &file.desk_users,
                default_key,
                username,
            ) {
                Ok(live) if timing.is_empty() => live,
                Ok(_) => return Err(ConfigError { issues: timing }),
                Err(mut e) => {
                    e.issues.extend(timing);
                    return Err(e);
                }
            }
        }
        // The tenants' own problems too (their accounts need the providers).
        Err(mut e) => {
            e.issues.extend(timing);
            match tenants::from_config(&file.tenants, default_key, username) {
                Err(more) => e.issues.extend(more.issues),
                Ok((tenants, _)) => {
                    if let Err(more) = DeskUsers::from_config(&file.desk_users, &tenants) {
                        e.issues.extend(more.issues);
                    }
                }
            }
            return Err(e);
        }
    };
    Ok((live, file, source))
}

/// The store `--database` names: SQLite (a file, or `sqlite::memory:`) or Postgres. Shown
/// (`Display` and `Debug` alike) without any secret it carries.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    SqliteMemory,
    SqliteFile(PathBuf),
    Postgres(String),
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "sqlite::memory:" || s == "sqlite://:memory:" {
            Ok(DatabaseUrl::SqliteMemory)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(s.to_owned()))
        } else if let Some(path) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            match path.split('?').next() {
                Some(p) if !p.is_empty() => Ok(DatabaseUrl::SqliteFile(p.into())),
                _ => Err(format!("`{s}` names no SQLite file")),
            }
        } else if s.contains("://") {
            Err(format!(
                "`{s}`: the database is sqlite::memory:, sqlite://FILE, a file path, or postgres://..."
            ))
        } else if s.is_empty() {
            Err("the database URL is empty".into())
        } else {
            Ok(DatabaseUrl::SqliteFile(s.into()))
        }
    }
}

impl DatabaseUrl {
    /// The URL the store connects to.
    pub fn store_url(&self) -> String {
        match self {
            DatabaseUrl::SqliteMemory => "sqlite::memory:".into(),
            DatabaseUrl::SqliteFile(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(url) => url.clone(),
        }
    }
}

impl std::fmt::Display for DatabaseUrl {
    /// Never prints a Postgres password: not in the user part, not in the query
    /// (`?password=`, `sslpassword`...), and nothing of a URL that does not parse.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::SqliteMemory => f.write_str("sqlite::memory:"),
            DatabaseUrl::SqliteFile(p) => write!(f, "sqlite://{}", p.display()),
            DatabaseUrl::Postgres(url) => f.write_str(&redacted(url)),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// A Postgres URL with its secrets replaced by `***`.
fn redacted(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "postgres://(a URL that does not parse, not shown)".into();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let secret = |key: &str| {
        let key = key.to_ascii_lowercase();
        ["pass", "secret", "key", "token"]
            .iter()
            .any(|s| key.contains(s))
    };
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!("sqlite::memory:".parse(), Ok(DatabaseUrl::SqliteMemory));
        assert_eq!(
            "certgate.db".parse(),
            Ok(DatabaseUrl::SqliteFile("certgate.db".into()))
        );
        assert_eq!(
            "sqlite://data/certgate.db?mode=rwc".parse(),
            Ok(DatabaseUrl::SqliteFile("data/certgate.db".into()))
        );
        let pg: DatabaseUrl = "postgres://u:secret@127.0.0.1/test".parse().unwrap();
        assert_eq!(pg.to_string(), "postgres://u:***@127.0.0.1/test");
        // A password in the query, in any case, and a URL that does not parse: never shown.
        for url in [
            "postgres://db.internal/test?user=u&password=secret&sslmode=require",
            "postgres://db.internal/test?PASSWORD=secret",
            "postgres://db.internal/test?sslpassword=secret",
            "postgres://u:secret@[bad/test",
        ] {
            let pg: DatabaseUrl = url.parse().unwrap();
            for shown in [pg.to_string(), format!("{pg:?}")] {
                assert!(!shown.contains("secret"), "{shown}");
            }
        }
        let pg: DatabaseUrl = "postgres://db.internal/test?user=u&password=secret&sslmode=require"
            .parse()
            .unwrap();
        assert_eq!(
            pg.to_string(),
            "postgres://db.internal/test?user=u&password=***&sslmode=require"
        );
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
        assert!("".parse::<DatabaseUrl>().is_err());
    }
}
