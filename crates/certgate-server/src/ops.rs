//! Writing operations: every transition is saved with its side effects in one transaction:
//! the webhook to the tenant when the status changed, and the audit entry.

use crate::tenants::Tenant;
use crate::AppState;
use certgate_core::operation::Operation;
use certgate_store::{AuditEntry, Effects, OutboxWrite, SaveOperation, StoreError};
use chrono::{DateTime, Utc};

/// Milliseconds since the epoch, as the store keeps instants.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// An audit entry: `actor` did `action` to `target`, with `outcome`.
pub fn audit(
    tenant: &str,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    detail: impl Into<String>,
    now: DateTime<Utc>,
) -> AuditEntry {
    AuditEntry {
        tenant: tenant.into(),
        at: ms(now),
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        outcome: outcome.into(),
        detail: detail.into(),
    }
}

/// The webhook of a status change, when the tenant has a webhook.
pub fn webhook(tenant: Option<&Tenant>, op: &Operation, now: DateTime<Utc>) -> Option<OutboxWrite> {
    let hook = tenant?.webhook.as_ref()?;
    Some(OutboxWrite {
        tenant: tenant?.id.clone(),
        stream: op.id.clone(),
        url: hook.url.clone(),
        payload: serde_json::to_string(op).ok()?,
        now: ms(now),
    })
}

/// The effects of a transition of `op`: the audit entries, and a webhook if `changed`.
pub fn effects(
    state: &AppState,
    tenant_id: &str,
    op: &Operation,
    changed: bool,
    audit: Vec<AuditEntry>,
) -> Effects {
    let outbox = if changed {
        webhook(state.tenants.get(tenant_id), op, op.updated_at)
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    Effects {
        tickets: Vec::new(),
        outbox,
        audit,
    }
}

/// Saves a change the API made to `op` (a withdrawal, a resolved ticket) if nobody changed the
/// operation since `version`; false if somebody did (read it again and retry).
pub async fn save_by_api(
    state: &AppState,
    op: &Operation,
    version: i64,
    next_run_at: Option<DateTime<Utc>>,
    effects: &Effects,
) -> Result<bool, StoreError> {
    let save = SaveOperation {
        id: &op.id,
        expected_version: version,
        owner: None,
        keep_lease: false,
        status: op.status,
        now: ms(op.updated_at),
        next_run_at: next_run_at.map(ms),
        body: serde_json::to_string(op).expect("an operation serializes"),
    };
    state.store.save_operation(&save, effects).await
}
