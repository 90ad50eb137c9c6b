//! Events (API.md, "Events and webhooks"): what a change tells the tenant, written in the
//! change's transaction with a delivery to the tenant's webhook (and, for a new ticket, to the
//! helpdesk); and the pruning of the feed past its retention.

use crate::Engine;
use certgate_core::event::{DeliveryTarget, EventType};
use certgate_core::lifecycle::Emit;
use certgate_core::operation::Operation;
use certgate_core::TenantId;
use certgate_store::ms;
use certgate_store::{DeliveryWrite, Effects, EventWrite};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// An event as the feed lists it and a webhook receives it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Event<'a> {
    /// `evt_` and 32 hex digits; the same id on every delivery of the event.
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(with = "certgate_core::order::instant")]
    pub created_at: DateTime<Utc>,
    pub tenant: &'a TenantId,
    /// The operation (`operation`), the ticket (`ticket`, for ticket events), for
    /// `operation.attention_needed` the `step` and `reason`, for `refund.*` the `refund`
    /// record, and for `order.*` the watched `order` with its quote and window.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// How often the feed is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// Adds to `fx` the events `emits` of `op` (the ticket opened or resolved, if any, as
/// `ticket`) and their deliveries.
pub fn add(
    fx: &mut Effects,
    state: &Engine,
    tenant: &TenantId,
    op: &Operation,
    emits: &[Emit],
    ticket: Option<&Value>,
    now: DateTime<Utc>,
) {
    if emits.is_empty() {
        return;
    }
    let operation = serde_json::to_value(op).unwrap_or(Value::Null);
    for emit in emits {
        let data = match emit {
            Emit::StatusChanged => json!({"operation": operation}),
            Emit::AttentionNeeded { step, reason } => {
                json!({"operation": operation, "step": step, "reason": reason})
            }
            Emit::TicketOpened { .. } | Emit::TicketResolved { .. } => {
                json!({"ticket": ticket, "operation": operation})
            }
            Emit::Refund(_) => json!({"refund": op.refund(), "operation": operation}),
        };
        let helpdesk = matches!(emit, Emit::TicketOpened { .. })
            .then_some(ticket)
            .flatten();
        push(
            fx,
            state,
            New {
                tenant,
                kind: emit.kind(),
                stream: op.id(),
                data,
                helpdesk,
            },
            now,
        );
    }
}

/// An event to write.
#[derive(Debug)]
pub struct New<'a> {
    pub tenant: &'a TenantId,
    pub kind: EventType,
    /// What it is about (an operation's id, a watched order's `order:` id): deliveries of one
    /// stream keep their order.
    pub stream: &'a str,
    pub data: Value,
    /// The ticket to push to the outside helpdesk, if any.
    pub helpdesk: Option<&'a Value>,
}

/// Adds one event to `fx`, with its delivery to the tenant's webhook (and the helpdesk's).
pub fn push(fx: &mut Effects, state: &Engine, event: New<'_>, now: DateTime<Utc>) {
    let live = state.live();
    let tenant = event.tenant;
    let hook = live.tenants.get(tenant).and_then(|t| t.webhook.as_ref());
    let expires_at = ms(state.webhooks.policy().expires(now));
    let id = crate::ids::new("evt");
    let body = serde_json::to_string(&Event {
        id: &id,
        kind: event.kind,
        created_at: now,
        tenant,
        data: event.data,
    })
    .unwrap_or_default();
    let delivery = |target, url: &str, payload: &str| DeliveryWrite {
        tenant: tenant.clone(),
        event_id: id.clone(),
        event_type: event.kind,
        target,
        stream: event.stream.into(),
        url: url.into(),
        payload: payload.into(),
        now: ms(now),
        expires_at,
    };
    if let Some(hook) = hook {
        fx.deliveries
            .push(delivery(DeliveryTarget::Webhook, &hook.url, &body));
    }
    if let (Some(helpdesk), Some(ticket)) = (&live.helpdesk, event.helpdesk) {
        fx.deliveries.push(delivery(
            DeliveryTarget::Helpdesk,
            &helpdesk.url,
            &ticket.to_string(),
        ));
    }
    fx.events.push(EventWrite {
        id,
        tenant: tenant.clone(),
        kind: event.kind,
        stream: event.stream.into(),
        now: ms(now),
        body,
    });
}

/// Starts the task that forgets events past the retention (at start, then hourly).
pub fn spawn_pruner(state: Arc<Engine>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while !*shutdown.borrow() {
            let before = chrono::Duration::from_std(state.events.retention())
                .ok()
                .and_then(|r| (state.clock)().checked_sub_signed(r));
            if let Some(before) = before {
                match state.store.prune_events(ms(before)).await {
                    Ok((0, 0)) => {}
                    Ok((events, deliveries)) => {
                        tracing::info!(events, deliveries, "pruned events past their retention")
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot prune old events"),
                }
            }
            tokio::select! {
                () = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = shutdown.changed() => {}
            }
        }
    })
}
