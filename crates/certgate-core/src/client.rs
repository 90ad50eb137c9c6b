//! The `CaClient` trait: how an automated step reaches a CA. A provider's policy is pure
//! ([`crate::Provider`]); its client does the I/O. Clients are built from the provider's
//! `[api]` section by the factory registered under the client's name (`digicert`, ...).
//!
//! A client says what happened in the CA's own terms ([`StepOutcome`], [`CallFailure`]);
//! what that means for the operation is decided in [`crate::lifecycle`].

use crate::order::{Order, OrderState};
use crate::quote::{Action, Confirmation, Intent};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::time::Duration;

/// An order fact that a CA call carries or a read of the order at the CA shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderField {
    SupplierOrderId,
    CertificateId,
    PlatformOrderId,
    CommonName,
}

impl OrderField {
    /// Its name under `order` (API.md).
    pub fn name(self) -> &'static str {
        match self {
            OrderField::SupplierOrderId => "supplier_order_id",
            OrderField::CertificateId => "certificate_id",
            OrderField::PlatformOrderId => "platform_order_id",
            OrderField::CommonName => "common_name",
        }
    }

    /// Its value in `order`, if given and not empty.
    pub fn of(self, order: &Order) -> Option<&str> {
        match self {
            OrderField::SupplierOrderId => order.supplier_order_id.as_deref(),
            OrderField::CertificateId => order.certificate_id.as_deref(),
            OrderField::PlatformOrderId => order.platform_order_id.as_deref(),
            OrderField::CommonName => order.common_name.as_deref(),
        }
        .filter(|v| !v.is_empty())
    }

    /// Whether the CA's `shown` value and the reseller's `sent` one name the same thing: a
    /// common name without regard to letter case or a trailing dot, an id as digits without
    /// leading zeros where both are digits, else exactly.
    fn same(self, shown: &str, sent: &str) -> bool {
        fn digits(v: &str) -> Option<&str> {
            IdShape::Digits
                .accepts(v)
                .then(|| v.trim_start_matches('0'))
        }
        match self {
            OrderField::CommonName => shown
                .trim_end_matches('.')
                .eq_ignore_ascii_case(sent.trim_end_matches('.')),
            _ => match (digits(shown), digits(sent)) {
                (Some(a), Some(b)) => a == b,
                _ => shown == sent,
            },
        }
    }
}

/// The shape a CA gives its ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdShape {
    /// Decimal digits (`1234567`), at most 20 of them.
    Digits,
}

impl IdShape {
    pub fn accepts(self, value: &str) -> bool {
        match self {
            IdShape::Digits => {
                (1..=20).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
            }
        }
    }

    /// What a value of this shape looks like, for an error message.
    pub fn describe(self) -> &'static str {
        match self {
            IdShape::Digits => "digits only (1 to 20)",
        }
    }
}

/// An order field that a client places in its calls, and the shape the CA's values have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdSpec {
    pub field: OrderField,
    pub shape: IdShape,
}

/// The ids most clients send: the CA's order id (`supplier_order_id`), digits.
pub const SUPPLIER_ORDER_DIGITS: &[IdSpec] = &[IdSpec {
    field: OrderField::SupplierOrderId,
    shape: IdShape::Digits,
}];

/// Every id of `order` that `client` would place in a call and that has another shape than
/// the CA's: the request is refused before anything is stored or sent, naming each field.
pub fn check_ids(client: &dyn CaClient, order: &Order) -> Result<(), crate::InvalidInput> {
    let mut errors = crate::validation::Errors::default();
    for spec in client.ids() {
        if let Some(value) = spec.field.of(order) {
            if !spec.shape.accepts(value) {
                errors.push(
                    format!("order.{}", spec.field.name()),
                    format!(
                        "is not an id this CA gives: {} (it is placed in the CA's requests)",
                        spec.shape.describe()
                    ),
                );
            }
        }
    }
    errors.finish()
}

/// What a read of the order at the CA shows: its state, and the facts about it that certgate
/// compares with the reseller's before acting (the common name, ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// `None`: the API cannot read a state, or the CA's answer names none certgate knows.
    pub state: Option<OrderState>,
    pub shown: Vec<(OrderField, String)>,
    /// Fields the read must show when the reseller sent them ([`CaClient::vouched`]): an id
    /// the step's call acts on beside the order's own, which only this read ties to the order.
    pub vouches: Vec<OrderField>,
}

impl Observation {
    /// A read that shows only a state.
    pub fn state(state: Option<OrderState>) -> Self {
        Observation {
            state,
            shown: Vec::new(),
            vouches: Vec::new(),
        }
    }

    /// This read, also showing `field` as `value` (if the CA gave one).
    pub fn showing(mut self, field: OrderField, value: Option<impl Into<String>>) -> Self {
        if let Some(v) = value.map(Into::into).filter(|v| !v.is_empty()) {
            self.shown.push((field, v));
        }
        self
    }

    /// The fields whose value the CA shows differently from `order`'s, or does not show when it
    /// must vouch for them (a field the reseller did not send is not compared).
    pub fn mismatches(&self, order: &Order) -> Vec<OrderField> {
        let differ = self
            .shown
            .iter()
            .filter(|(field, shown)| field.of(order).is_some_and(|sent| !field.same(shown, sent)))
            .map(|(field, _)| *field);
        let unshown = self.vouches.iter().copied().filter(|field| {
            field.of(order).is_some() && !self.shown.iter().any(|(f, _)| f == field)
        });
        differ.chain(unshown).collect()
    }

    /// The fields compared with `order` (shown by the CA and sent by the reseller).
    pub fn compared(&self, order: &Order) -> Vec<OrderField> {
        self.shown
            .iter()
            .filter(|(field, _)| field.of(order).is_some())
            .map(|(field, _)| *field)
            .collect()
    }
}

/// One automated step to perform at the CA.
#[derive(Debug, Clone, Copy)]
pub struct StepCall<'a> {
    pub operation_id: &'a str,
    /// What the reseller asked for: a refund revokes the whole order, a revoke the certificate.
    pub intent: Intent,
    pub action: Action,
    pub order: &'a Order,
    pub confirmation: Option<Confirmation>,
    /// For revocations.
    pub reason: Option<RevocationReason>,
    /// Free text the CA records (DigiCert requires a note to cancel).
    pub note: Option<&'a str>,
}

/// What the CA said about a step it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The CA confirmed the step is done.
    Completed { upstream_ref: Option<String> },
    /// The CA accepted the step; someone (the applicant) must confirm by e-mail.
    AwaitingConfirmation { upstream_ref: Option<String> },
    /// The CA accepted the step and is still processing it.
    AwaitingCa { upstream_ref: Option<String> },
}

/// The CA's own code and message, as it gave them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CaMessage {
    /// The CA's code (`invalid_order_status`, `-20`, `Throttling.User`), when it gave one.
    #[serde(default)]
    pub code: Option<String>,
    pub message: String,
}

impl CaMessage {
    pub fn new(code: Option<String>, message: impl Into<String>) -> Self {
        CaMessage {
            code,
            message: message.into(),
        }
    }

    /// A message without a CA code.
    pub fn text(message: impl Into<String>) -> Self {
        CaMessage::new(None, message)
    }
}

impl std::fmt::Display for CaMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a call to the CA did not bring an answer that moves the step on, by what it means for
/// the step: whether the request went out, and whether the CA may have acted on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFailure {
    /// Nothing was sent: the client cannot make the request (a credential is not set).
    #[error("not sent: {0}")]
    NotSent(String),
    /// The CA could not be reached; the request never arrived (connection refused, DNS).
    #[error("{0}")]
    Unreachable(String),
    /// The request may have reached the CA, but no usable answer came back (a timeout, a
    /// connection reset, a 5xx, an unreadable body): the CA may have acted on it.
    #[error("{message}")]
    NoAnswer {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The CA asks to slow down (DigiCert 429, Sectigo -42, Alibaba `Throttling*`). Nothing was
    /// done; the request must be made again later.
    #[error("{answer}")]
    Throttled {
        answer: CaMessage,
        retry_after: Option<Duration>,
    },
    /// The CA answered that it will not do it.
    #[error("{0}")]
    Refused(CaMessage),
    /// The CA answered that what was asked is already done (DigiCert `invalid_order_status` on
    /// a cancelled order, Sectigo -20, -18): true only if a read of the order confirms it.
    #[error("{0}")]
    AlreadyDone(CaMessage),
    /// The CA's API cannot do this for this order; its support can (Sectigo's `!AutoRefund`
    /// of a multi-domain certificate).
    #[error("{0}")]
    NeedsPerson(CaMessage),
}

impl CallFailure {
    pub fn refused(message: impl Into<String>) -> Self {
        CallFailure::Refused(CaMessage::text(message))
    }

    /// The CA's own code, if the failure carries one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallFailure::Throttled { answer, .. }
            | CallFailure::Refused(answer)
            | CallFailure::AlreadyDone(answer)
            | CallFailure::NeedsPerson(answer) => answer.code.as_deref(),
            _ => None,
        }
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CallFailure::NotSent(_) => "not_sent",
            CallFailure::Unreachable(_) => "unreachable",
            CallFailure::NoAnswer { .. } => "no_answer",
            CallFailure::Throttled { .. } => "throttled",
            CallFailure::Refused(_) => "refused",
            CallFailure::AlreadyDone(_) => "already_done",
            CallFailure::NeedsPerson(_) => "needs_person",
        }
    }
}

/// A CA's API as certgate uses it.
#[async_trait]
pub trait CaClient: Send + Sync + Debug {
    /// How many HTTP requests `execute` makes for `action` (the executor paces by requests).
    fn requests(&self, _action: Action) -> u32 {
        1
    }

    /// The order field this API finds the order by: the CA's own order id
    /// (`supplier_order_id`) unless the channel says otherwise.
    fn reference(&self) -> OrderField {
        OrderField::SupplierOrderId
    }

    /// Every order field this client places in a request (a URL, a form, a query, an XML
    /// body), with the shape the CA's values have: an automated operation whose id has another
    /// shape is refused ([`check_ids`]).
    fn ids(&self) -> &'static [IdSpec] {
        SUPPLIER_ORDER_DIGITS
    }

    /// The order fields a read of the order must show, and match, before `intent` acts on
    /// `order`: an id the calls use beside the order's own (DigiCert's certificate id for the
    /// revoke of one certificate), which nothing but the read ties to the order.
    fn vouched(&self, _intent: Intent, _order: &Order) -> &'static [OrderField] {
        &[]
    }

    /// The order field this API finds the order by, if `order` does not give it.
    fn missing_reference(&self, order: &Order) -> Option<&'static str> {
        let field = self.reference();
        field.of(order).is_none().then_some(field.name())
    }

    /// Whether a request can be made at all (its credentials are set): the reason if not.
    /// Checked before every call, so that nothing is counted as sent that could not be.
    fn ready(&self) -> Result<(), String>;

    /// Performs one automated step. `Ok` only when the CA accepted it.
    async fn execute(&self, call: &StepCall<'_>) -> Result<StepOutcome, CallFailure>;

    /// The order as the CA reports it: its state (`None` where the API cannot read it or the
    /// CA's answer names no state certgate knows) and what it shows of the order.
    async fn observe(&self, _order: &Order) -> Result<Observation, CallFailure> {
        Ok(Observation::default())
    }
}

/// RFC 5280 revocation reasons that a public TLS or client certificate may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum RevocationReason {
    #[serde(rename = "unspecified")]
    Unspecified,
    #[serde(rename = "keyCompromise")]
    KeyCompromise,
    #[serde(rename = "cACompromise")]
    CaCompromise,
    #[serde(rename = "affiliationChanged")]
    AffiliationChanged,
    #[serde(rename = "superseded")]
    Superseded,
    #[serde(rename = "cessationOfOperation")]
    CessationOfOperation,
    #[serde(rename = "privilegeWithdrawn")]
    PrivilegeWithdrawn,
    #[serde(rename = "aACompromise")]
    AaCompromise,
}

impl RevocationReason {
    /// The RFC 5280 reason code.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::PrivilegeWithdrawn => 9,
            RevocationReason::AaCompromise => 10,
        }
    }

    /// The RFC 5280 name (`keyCompromise`).
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
            RevocationReason::AaCompromise => "aACompromise",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_digits_are_digits_and_nothing_else() {
        for ok in ["1", "1001", "00012", "12345678901234567890"] {
            assert!(IdShape::Digits.accepts(ok), "{ok}");
        }
        for bad in [
            "",
            "DC-1",
            "1 2",
            "１２",
            "1/2",
            "123456789012345678901",
            "+1",
            "-1",
        ] {
            assert!(!IdShape::Digits.accepts(bad), "{bad}");
        }
    }

    #[test]
    fn what_a_ca_shows_is_compared_only_with_what_was_sent() {
        let mut order: Order = serde_json::from_value(crate::testing::sample()).unwrap();
        order.supplier_order_id = Some("1001".into());
        order.certificate_id = None;
        let seen = Observation::state(None)
            .showing(OrderField::SupplierOrderId, Some("01001"))
            .showing(OrderField::CertificateId, Some("9"))
            .showing(OrderField::CommonName, Some("Shop.Example.COM"));
        assert!(seen.mismatches(&order).is_empty());
        assert_eq!(
            seen.compared(&order),
            [OrderField::SupplierOrderId, OrderField::CommonName]
        );
        order.common_name = Some("*.example.com".into());
        assert_eq!(seen.mismatches(&order), [OrderField::CommonName]);
    }

    #[test]
    fn an_id_the_read_must_vouch_for_is_a_mismatch_when_it_shows_none() {
        let mut order: Order = serde_json::from_value(crate::testing::sample()).unwrap();
        order.certificate_id = Some("7002".into());
        let mut unshown = Observation::state(None);
        unshown.vouches.push(OrderField::CertificateId);
        assert_eq!(unshown.mismatches(&order), [OrderField::CertificateId]);
        let mut shown = Observation::state(None).showing(OrderField::CertificateId, Some("7002"));
        shown.vouches.push(OrderField::CertificateId);
        assert!(shown.mismatches(&order).is_empty());
        order.certificate_id = None;
        assert!(
            unshown.mismatches(&order).is_empty(),
            "not sent, not compared"
        );
    }

    #[test]
    fn reasons_are_rfc_5280_names() {
        let r: RevocationReason =
            serde_json::from_value(serde_json::json!("keyCompromise")).unwrap();
        assert_eq!((r.code(), r.name()), (1, "keyCompromise"));
        assert!(
            serde_json::from_value::<RevocationReason>(serde_json::json!("certificateHold"))
                .is_err()
        );
        assert!(
            serde_json::from_value::<RevocationReason>(serde_json::json!("key_compromise"))
                .is_err()
        );
    }
}
