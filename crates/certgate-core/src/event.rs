//! Events: every change a backend is told about (API.md, "Events and webhooks"), and the
//! schedule of a webhook delivery: when a failed one is tried again, and when it is `dead`.
//! Pure; the server stores events with the change and does the HTTP.

use chrono::{DateTime, Duration as Span, Utc};
use std::time::Duration;

/// What an event says happened (`type` on the wire).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
pub enum EventType {
    #[strum(serialize = "operation.status_changed")]
    OperationStatusChanged,
    #[strum(serialize = "operation.attention_needed")]
    OperationAttentionNeeded,
    #[strum(serialize = "ticket.opened")]
    TicketOpened,
    #[strum(serialize = "ticket.resolved")]
    TicketResolved,
    #[strum(serialize = "refund.approved")]
    RefundApproved,
    #[strum(serialize = "refund.credited")]
    RefundCredited,
    #[strum(serialize = "refund.denied")]
    RefundDenied,
    #[strum(serialize = "refund.mismatch")]
    RefundMismatch,
    #[strum(serialize = "refund.overdue")]
    RefundOverdue,
    #[strum(serialize = "order.refund_window_closing")]
    OrderRefundWindowClosing,
    #[strum(serialize = "order.refund_window_closed")]
    OrderRefundWindowClosed,
}

/// A closed set of names on the wire (and in the store), read and written through strum:
/// `as_str`, `names` (for error messages), `TryFrom<String>` with an error that lists the
/// names, serde by name, and an OpenAPI `enum` schema.
macro_rules! wire_names {
    ($($t:ident: $what:literal),+ $(,)?) => {$(
        impl $t {
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// Every name, comma-separated.
            pub fn names() -> String {
                <Self as strum::VariantArray>::VARIANTS
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }

        impl TryFrom<String> for $t {
            type Error = String;

            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
                    .map_err(|_| format!("unknown {} `{s}`; one of {}", $what, Self::names()))
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl utoipa::PartialSchema for $t {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(
                        <Self as strum::VariantArray>::VARIANTS.iter().map(|v| v.as_str()),
                    ))
                    .into()
            }
        }

        impl utoipa::ToSchema for $t {}
    )+};
}

pub(crate) use wire_names;

wire_names!(
    EventType: "event type",
    DeliveryStatus: "delivery status",
    DeliveryTarget: "delivery target",
);

/// Where a webhook delivery stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet: due at its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed for `max_age`; kept, listed, and replayable.
    Dead,
}

/// Who a delivery goes to: the tenant's webhook, or the outside helpdesk (new tickets).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryTarget {
    Webhook,
    Helpdesk,
}

/// Capped exponential backoff: the `tries`-th wait (1-based) doubles from `base` up to `max`;
/// `jitter` in `[0, 1]` picks it within the upper half of that step, so receivers and CAs that
/// come back are not hit by every waiting caller at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn wait(&self, tries: u32, jitter: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << tries.saturating_sub(1).min(20))
            .min(self.max);
        let half = exp / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// How webhook deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    pub backoff: Backoff,
    /// How long a delivery is tried before it is `dead` (counted from its first queueing, or
    /// from a replay).
    pub max_age: Duration,
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    Dead,
}

impl DeliveryPolicy {
    /// When a delivery tried for the first time (or replayed) at `now` expires.
    pub fn expires(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + Span::from_std(self.max_age).unwrap_or(Span::MAX)
    }

    /// After the `attempts`-th failed attempt at `now` of a delivery that expires at
    /// `expires`: tried again after the backoff, with a last attempt at the expiry itself, and
    /// `dead` once an attempt at or after the expiry failed.
    pub fn after_failure(
        &self,
        attempts: u32,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
        jitter: f64,
    ) -> AfterFailure {
        if now >= expires {
            return AfterFailure::Dead;
        }
        let wait = Span::from_std(self.backoff.wait(attempts, jitter)).unwrap_or(Span::MAX);
        AfterFailure::RetryAt(now.checked_add_signed(wait).unwrap_or(expires).min(expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DeliveryPolicy {
        DeliveryPolicy {
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(3_600),
            },
            max_age: Duration::from_secs(72 * 3_600),
        }
    }

    #[test]
    fn types_and_statuses_read_and_print_as_on_the_wire() {
        for t in <EventType as strum::VariantArray>::VARIANTS {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), *t);
        }
        assert_eq!(
            EventType::OperationStatusChanged.as_str(),
            "operation.status_changed"
        );
        assert!("operation.created".parse::<EventType>().is_err());
        assert_eq!(
            "dead".parse::<DeliveryStatus>().unwrap(),
            DeliveryStatus::Dead
        );
        assert!(DeliveryStatus::names().contains("pending, delivered, dead"));
    }

    #[test]
    fn backoff_doubles_within_jitter_up_to_its_cap() {
        let b = policy().backoff;
        for tries in 1..40 {
            let low = b.wait(tries, 0.0);
            let high = b.wait(tries, 1.0);
            let full = Duration::from_secs(1 << (tries - 1).min(20)).min(b.max);
            assert_eq!(low, full / 2, "tries {tries}");
            assert_eq!(high, full, "tries {tries}");
        }
    }

    #[test]
    fn a_failing_delivery_is_tried_until_its_max_age_then_dead() {
        let p = policy();
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let expires = p.expires(start);
        let mut now = start;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match p.after_failure(attempts, now, expires, 0.5) {
                AfterFailure::RetryAt(next) => {
                    assert!(next > now && next <= expires);
                    now = next;
                }
                AfterFailure::Dead => break,
            }
        }
        assert_eq!(now, expires, "the last attempt is at the expiry");
        // 72 h with waits capped at an hour: more than 70 attempts, not thousands.
        assert!((70..120).contains(&attempts), "{attempts}");
    }
}
