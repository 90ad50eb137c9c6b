//! Policy building blocks shared by every CA: what is left to act on, which intent is the
//! alternative, and the table-driven rules of brands sold through a reseller platform
//! ([`brand`], also the engine behind config-only providers).

pub mod brand;

use crate::order::{Order, OrderState};
use crate::quote::{Decision, Intent};
use crate::rule::common::{ORDER_CANCELED, ORDER_EXPIRED, ORDER_REVOKED};
use chrono::{DateTime, Utc};

/// A cancel or revoke on an order that is already cancelled, revoked or expired is refused,
/// with no alternative: there is nothing left to act on.
pub fn nothing_to_act_on(order: &Order, as_of: DateTime<Utc>) -> Option<Decision> {
    let rule = match order.state {
        OrderState::Canceled => ORDER_CANCELED,
        OrderState::Revoked => ORDER_REVOKED,
        _ if order.is_expired(as_of) => ORDER_EXPIRED,
        _ => return None,
    };
    Some(Decision::refuse(order.paid.currency, rule, None))
}

/// The intent that can still be asked for when a refund is refused: cancel while the order is
/// pending, revoke while an issued certificate is unexpired, else none.
pub fn alternative(order: &Order, as_of: DateTime<Utc>) -> Option<Intent> {
    if order.is_expired(as_of) {
        None
    } else if order.state.is_unissued() {
        Some(Intent::Cancel)
    } else if order.state == OrderState::Issued {
        Some(Intent::Revoke)
    } else {
        None
    }
}

/// The order's issue instant; `Order::validate` guarantees it for issued and revoked orders.
pub fn issued_at(order: &Order) -> Result<DateTime<Utc>, crate::InvalidInput> {
    order.issued_at.ok_or_else(|| {
        crate::InvalidInput::one(
            "order.issued_at",
            "is required when order.state is issued or revoked",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{at, order};
    use serde_json::json;

    #[test]
    fn nothing_to_act_on_names_the_reason() {
        let now = at("2026-06-15T08:30:00Z");
        let cases = [
            (
                json!({"state": "canceled", "issued_at": null}),
                Some(ORDER_CANCELED),
            ),
            (
                json!({"state": "revoked", "revoked_at": "2026-02-01T00:00:00Z"}),
                Some(ORDER_REVOKED),
            ),
            (json!({"state": "expired"}), Some(ORDER_EXPIRED)),
            (
                json!({"expires_at": "2026-06-15T08:30:00Z"}),
                Some(ORDER_EXPIRED),
            ),
            (json!({}), None),
        ];
        for (patch, rule) in cases {
            let d = nothing_to_act_on(&order(patch.clone()), now);
            assert_eq!(d.map(|d| d.rules[0].clone()), rule, "{patch}");
        }
    }

    #[test]
    fn alternatives_follow_the_state() {
        let now = at("2026-06-15T08:30:00Z");
        assert_eq!(alternative(&order(json!({})), now), Some(Intent::Revoke));
        let pending = order(json!({"state": "pending", "issued_at": null}));
        assert_eq!(alternative(&pending, now), Some(Intent::Cancel));
        let expired = order(json!({"expires_at": "2026-06-01T00:00:00Z"}));
        assert_eq!(alternative(&expired, now), None);
    }
}
