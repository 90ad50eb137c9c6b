//! The desk's users, as `[[desk_users]]` configures them: a name, the tenants they serve and a
//! key from the environment (kept only as a digest).

use crate::auth::KeyRing;
use crate::config::DeskUserConfig;
use certgate_core::config::{ConfigError, ConfigIssue};
use certgate_core::TenantId;
use sha2::{Digest, Sha256};

/// A desk user, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskUser {
    pub name: String,
    pub tenants: Vec<TenantId>,
    /// Names the user's key without revealing it: a session begun with another key (the
    /// key rotated since) has ended.
    pub(super) key_id: String,
}

/// The desk's users and their keys (kept only as digests).
#[derive(Default)]
pub struct DeskUsers(KeyRing<DeskUser>);

impl std::fmt::Debug for DeskUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeskUsers")
            .field(
                "users",
                &self.0.values().map(|u| &u.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl DeskUsers {
    /// Builds the desk users; every tenant they name must exist (`tenants`). Every problem is
    /// reported at once.
    pub fn from_config(
        configs: &[DeskUserConfig],
        tenants: &certgate_engine::tenants::Tenants,
    ) -> Result<DeskUsers, ConfigError> {
        let mut issues = Vec::new();
        let mut out = DeskUsers::default();
        for (i, u) in configs.iter().enumerate() {
            let mut issue = |key: &str, message: String| {
                issues.push(ConfigIssue {
                    key: format!("desk_users[{i}].{key}"),
                    message,
                })
            };
            if u.name.trim().is_empty() {
                issue("name", "must not be empty".into());
            } else if configs[..i].iter().any(|o| o.name == u.name) {
                issue("name", format!("`{}` is used twice", u.name));
            }
            if u.tenants.is_empty() {
                issue("tenants", "must name at least one tenant".into());
            }
            for t in &u.tenants {
                if tenants.get(t.as_str()).is_none() {
                    issue("tenants", format!("no tenant `{t}` is configured"));
                }
            }
            match u.key.resolve() {
                Some(key) => out.0.add(
                    DeskUser {
                        name: u.name.clone(),
                        tenants: u.tenants.iter().map(|t| t.as_str().into()).collect(),
                        key_id: hex::encode(&Sha256::digest(format!("desk-key-id:{key}"))[..8]),
                    },
                    &key,
                ),
                None => issue(
                    "key",
                    format!("${{{}}} is not set in the environment", u.key.var),
                ),
            }
        }
        if issues.is_empty() {
            Ok(out)
        } else {
            Err(ConfigError { issues })
        }
    }

    /// The user whose key this is (compared in constant time).
    pub(super) fn by_key(&self, presented: &str) -> Option<&DeskUser> {
        self.0.find(presented)
    }

    pub(super) fn by_name(&self, name: &str) -> Option<&DeskUser> {
        self.0.values().find(|u| u.name == name)
    }
}
