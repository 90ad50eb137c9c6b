//! Bearer-key authentication. Keys are kept only as SHA-256 digests and compared in constant
//! time ([`KeyRing`], which the desk's users share); each API key belongs to one tenant.
//! [`guarded`] holds back an address that keeps guessing (the API's and the desk's doors).

use crate::problem::ApiError;
use certgate_core::TenantId;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Secret keys, each naming a `T` (a tenant, a desk user): kept only as SHA-256 digests, and
/// found by comparing every stored digest in constant time.
pub struct KeyRing<T> {
    keys: Vec<([u8; 32], T)>,
}

impl<T> fmt::Debug for KeyRing<T> {
    /// How many keys, never a digest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl<T> Default for KeyRing<T> {
    fn default() -> Self {
        KeyRing { keys: Vec::new() }
    }
}

impl<T> KeyRing<T> {
    /// Accepts `key` for `value`. The key itself is not kept.
    pub fn add(&mut self, value: T, key: &str) {
        self.keys
            .push((Sha256::digest(key.as_bytes()).into(), value));
    }

    /// What this key names. Every stored key is compared, so the time taken does not depend on
    /// which key matched or how much of it did.
    pub fn find(&self, presented: &str) -> Option<&T> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (stored, value) in &self.keys {
            if bool::from(stored.ct_eq(&digest)) {
                found = Some(value);
            }
        }
        found
    }

    /// Every value, in the order added.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.keys.iter().map(|(_, v)| v)
    }
}

/// The API keys the gateway accepts, each a tenant's.
#[derive(Default)]
pub struct ApiKeys(KeyRing<TenantId>);

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("tenants", &self.0.values().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ApiKeys {
    /// Accepts `key` for `tenant`. The key itself is not kept.
    pub fn add(&mut self, tenant: impl Into<TenantId>, key: &str) {
        self.0.add(tenant.into(), key);
    }

    /// The tenant whose key this is (compared in constant time).
    pub fn tenant_for(&self, presented: &str) -> Option<&TenantId> {
        self.0.find(presented)
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case, RFC 9110).
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether two secrets are the same, in a time that depends on neither (their digests are
/// compared).
pub fn same_secret(presented: &str, expected: &str) -> bool {
    let a: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let b: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
    bool::from(a.ct_eq(&b))
}

/// Failed authentications by client address, for one door (the API, the desk login): after
/// `limit` failures within a minute, every attempt from the address is refused until the
/// oldest of them is a minute old, without its key being checked.
#[derive(Debug, Default)]
pub struct Guesses {
    by_client: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, Vec<Instant>>>,
}

/// The address failures are counted by: an IPv4 address, or an IPv6 address's /64 (one
/// host's usual allocation, so that it cannot guess from a fresh address each time).
fn counted_as(client: std::net::IpAddr) -> std::net::IpAddr {
    match client {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => std::net::IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
        v4 => v4,
    }
}

/// How long failed authentications count against an address.
const GUESS_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered before the stale ones are forgotten.
const GUESS_CLIENTS: usize = 10_000;

impl Guesses {
    /// `Err(wait)` when `client` has failed `limit` times within the last minute.
    pub fn check(
        &self,
        client: std::net::IpAddr,
        limit: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        let client = counted_as(client);
        let by_client = self.lock();
        let Some(failures) = by_client.get(&client) else {
            return Ok(());
        };
        let recent: Vec<_> = failures
            .iter()
            .filter(|at| now.duration_since(**at) < GUESS_WINDOW)
            .collect();
        if recent.len() < limit as usize {
            return Ok(());
        }
        // Let in once enough of them are a minute old to leave room for one more.
        let oldest_to_expire = recent[recent.len() - limit as usize];
        Err(GUESS_WINDOW.saturating_sub(now.duration_since(*oldest_to_expire)))
    }

    /// Records a failure of `client` at `now`.
    pub fn failed(&self, client: std::net::IpAddr, now: Instant) {
        let client = counted_as(client);
        let mut by_client = self.lock();
        if by_client.len() >= GUESS_CLIENTS && !by_client.contains_key(&client) {
            // Forget the addresses whose failures are all a minute old; if most are recent
            // (many addresses guessing at once), forget the whole table rather than grow it
            // or sweep it at every failure: each address then starts its count again.
            by_client.retain(|_, failures| {
                failures.retain(|at| now.duration_since(*at) < GUESS_WINDOW);
                !failures.is_empty()
            });
            if by_client.len() >= GUESS_CLIENTS / 2 {
                tracing::warn!(
                    addresses = by_client.len(),
                    "failed authentications from too many addresses at once: their counts start again"
                );
                by_client.clear();
            }
        }
        let failures = by_client.entry(client).or_default();
        failures.retain(|at| now.duration_since(*at) < GUESS_WINDOW);
        failures.push(now);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<std::net::IpAddr, Vec<Instant>>> {
        self.by_client.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs the key check `check` for a request from `client` at the door `guesses` guards (at
/// most `limit` failures a minute): a 429 with `Retry-After` while the address is held, else the check's answer, a failure recorded
/// and logged.
pub fn guarded<T>(
    guesses: &Guesses,
    limit: u32,
    client: Option<std::net::IpAddr>,
    door: &'static str,
    check: impl FnOnce() -> Result<T, &'static str>,
) -> Result<T, ApiError> {
    let now = std::time::Instant::now();
    if let Some(ip) = client {
        if let Err(wait) = guesses.check(ip, limit, now) {
            // Not at warn each time: a held address's every try would flood the log.
            tracing::debug!(client = %ip, door, "authentication refused: too many failures");
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "too many failed authentications from this address: try again in {} s",
                    wait.as_secs().max(1)
                ),
                retry_after: wait,
            });
        }
    }
    check().map_err(|why| {
        if let Some(ip) = client {
            guesses.failed(ip, now);
        }
        let from = client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        tracing::warn!(client = %from, door, reason = why, "authentication failed");
        ApiError::Unauthorized(why)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_their_tenant_and_never_print() {
        let mut keys = ApiKeys::default();
        keys.add("acme", "s3cret-key");
        keys.add("globex", "other-key");
        assert_eq!(keys.tenant_for("s3cret-key").unwrap().as_str(), "acme");
        assert_eq!(keys.tenant_for("other-key").unwrap().as_str(), "globex");
        assert!(keys.tenant_for("s3cret-ke").is_none());
        assert!(keys.tenant_for("").is_none());
        assert!(!format!("{keys:?}").contains("s3cret"));
    }

    #[test]
    fn an_address_that_keeps_guessing_waits_out_the_minute() {
        let guesses = Guesses::default();
        let (mine, other) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(guesses.check(mine, 3, t0), Ok(()), "failure {i}");
            guesses.failed(mine, t0 + Duration::from_secs(i));
        }
        let at = t0 + Duration::from_secs(10);
        assert_eq!(guesses.check(mine, 3, at), Err(Duration::from_secs(50)));
        assert_eq!(
            guesses.check(other, 3, at),
            Ok(()),
            "another address is not held"
        );
        // The first failure is a minute old: one more try.
        assert_eq!(guesses.check(mine, 3, t0 + Duration::from_secs(60)), Ok(()));
        // An IPv6 host is counted by its /64: a fresh address in it guesses no further.
        let (a, b): (std::net::IpAddr, std::net::IpAddr) = (
            "2001:db8:1:2::1".parse().unwrap(),
            "2001:db8:1:2:ffff::9".parse().unwrap(),
        );
        for _ in 0..3 {
            guesses.failed(a, t0);
        }
        assert!(guesses.check(b, 3, t0).is_err());
        assert_eq!(bearer("bearer k1"), Some("k1"));
        assert_eq!(bearer("Basic k1"), None);
    }
}
