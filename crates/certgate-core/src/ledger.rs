//! The refund ledger (API.md, "Refund ledger"): the money an operation's quote promises, and
//! how far it got: `pending → requested → approved → credited`, or `denied`. Pure; the
//! lifecycle moves a record as the operation goes ([`crate::lifecycle`]), a person or the
//! reseller's finance team reports what the CA did ([`Report`]), and the server stores a copy of
//! each record for the ledger's lists and sums.
//!
//! - `due_by` is the operation's completion plus the quote's `eta.max_business_days` (or
//!   [`DEFAULT_DUE_BUSINESS_DAYS`] when the quote gives none) on the CA's business-day calendar.
//! - A credited amount other than the one expected (for a discretionary refund: more than the
//!   quote's most, or another currency) sets `mismatch`; it is recorded, never corrected.
//! - `overdue` is set once `due_by` passes with the record neither credited nor denied, and
//!   cleared when it is.

use crate::calendar::Calendar;
use crate::money::{Amount, Currency, Money};
use crate::order::instant;
use crate::quote::{Refund, RefundKind};
use crate::validation::{Errors, InvalidInput};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Business days a refund is given after its operation completed when the quote names no
/// `eta.max_business_days`.
pub const DEFAULT_DUE_BUSINESS_DAYS: u32 = 10;

/// Where a refund stands.
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
pub enum RefundStatus {
    /// Promised by the quote; nothing asked of the CA yet.
    Pending,
    /// Asked for: the step that brings the money was sent or handed to a person.
    Requested,
    /// The CA agreed (its API accepted the refund, or a person reported its yes).
    Approved,
    /// The money arrived.
    Credited,
    /// The CA refused, or the request was withdrawn.
    Denied,
}

crate::event::wire_names!(RefundStatus: "refund status");

impl RefundStatus {
    /// Nothing more will happen to the record.
    pub fn is_final(self) -> bool {
        matches!(self, RefundStatus::Credited | RefundStatus::Denied)
    }
}

/// The longest a credit's reference may be.
pub const MAX_REFERENCE: usize = 200;

/// Money that arrived: `{"amount", "currency", "reference", "at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    #[serde(flatten)]
    pub money: Money,
    /// The CA's reference for the credit (a credit note, a transaction id).
    pub reference: Option<String>,
    #[serde(with = "instant")]
    pub at: DateTime<Utc>,
}

impl Credit {
    /// A credit as a ticket's resolution or a report gives it, checked: `field` names where it
    /// sits in the body (`credited`, or empty at the top).
    pub fn checked(
        field: &str,
        money: Money,
        reference: Option<String>,
        at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Credit, InvalidInput> {
        let name = |f: &str| {
            if field.is_empty() {
                f.to_owned()
            } else {
                format!("{field}.{f}")
            }
        };
        let mut errors = Errors::default();
        if let Err(e) = money.check_minor_units() {
            errors.push(name("amount"), e);
        }
        if let Some(r) = &reference {
            if errors.text(&name("reference"), r, MAX_REFERENCE, false) && r.trim().is_empty() {
                errors.push(name("reference"), "must not be blank");
            }
        }
        if at.is_some_and(|at| at > now) {
            errors.push(name("at"), "is in the future");
        }
        errors.finish()?;
        Ok(Credit {
            money,
            reference,
            at: at.unwrap_or(now),
        })
    }
}

impl utoipa::PartialSchema for Credit {
    /// Flat, as it is written (a flattened [`Money`] would carry its closed per-currency
    /// shapes into the credit's).
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use crate::money::{amount_pattern, MAX_FRACTION_DIGITS};
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        use utoipa::openapi::{KnownFormat, SchemaFormat};
        ObjectBuilder::new()
            .property(
                "amount",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(amount_pattern(MAX_FRACTION_DIGITS))),
            )
            .property("currency", <Currency as utoipa::PartialSchema>::schema())
            .property(
                "reference",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .description(Some("The CA's reference for the credit")),
            )
            .property(
                "at",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .required("amount")
            .required("currency")
            .required("reference")
            .required("at")
            .into()
    }
}

impl utoipa::ToSchema for Credit {}

/// A refund's record, as an operation carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundRecord {
    /// What the quote promised; null for a discretionary refund (the CA decides).
    pub expected: Option<Money>,
    pub status: RefundStatus,
    pub credited: Option<Credit>,
    #[serde(with = "instant::option")]
    pub due_by: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub mismatch: bool,
    /// The last thing said about it (a person's note, why it was denied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What someone reports the CA did with a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Approved,
    Credited(Credit),
    Denied,
}

/// A change of a refund record that a reseller's backend is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundEvent {
    Approved,
    Credited,
    Denied,
    Mismatch,
    Overdue,
}

/// A report the record cannot take (the API answers 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Final(pub String);

impl RefundRecord {
    /// The record of a quote's refund: `None` when it promises no money.
    pub fn promised(refund: &Refund) -> Option<RefundRecord> {
        let expected = match refund.kind {
            RefundKind::None => return None,
            RefundKind::Discretionary => None,
            RefundKind::Full | RefundKind::Partial => {
                Some(Money::new(refund.amount, refund.currency))
            }
        };
        Some(RefundRecord {
            expected,
            status: RefundStatus::Pending,
            credited: None,
            due_by: None,
            overdue: false,
            mismatch: false,
            note: None,
        })
    }

    /// The currency the ledger counts this record in.
    pub fn currency(&self, promise: &Refund) -> Currency {
        self.expected.map_or(promise.currency, |m| m.currency)
    }

    /// Records `report` (with a person's `note`); `promise` is the quote's refund. The events
    /// it raises, or why it cannot be taken.
    pub fn report(
        &mut self,
        report: Report,
        promise: &Refund,
        note: Option<String>,
    ) -> Result<Vec<RefundEvent>, Final> {
        if self.status.is_final() {
            return Err(Final(format!("the refund is already {}", self.status)));
        }
        let events = match report {
            Report::Approved if self.status == RefundStatus::Approved => {
                return Err(Final("the refund is already approved".into()))
            }
            Report::Approved => {
                self.status = RefundStatus::Approved;
                vec![RefundEvent::Approved]
            }
            Report::Denied => {
                self.status = RefundStatus::Denied;
                self.overdue = false;
                vec![RefundEvent::Denied]
            }
            Report::Credited(credit) => {
                self.mismatch = self.differs(&credit.money, promise);
                self.credited = Some(credit);
                self.status = RefundStatus::Credited;
                self.overdue = false;
                let mut events = vec![RefundEvent::Credited];
                if self.mismatch {
                    events.push(RefundEvent::Mismatch);
                }
                events
            }
        };
        if note.is_some() {
            self.note = note;
        }
        Ok(events)
    }

    /// Whether `credited` is not what was expected: another currency, another amount, or for
    /// a discretionary refund more than the quote's most.
    fn differs(&self, credited: &Money, promise: &Refund) -> bool {
        match self.expected {
            Some(expected) => {
                credited.currency != expected.currency
                    || credited.amount.value() != expected.amount.value()
            }
            None => {
                credited.currency != promise.currency
                    || credited.amount.value() > promise.amount.value()
            }
        }
    }

    /// The step that brings the money was sent or handed to a person.
    pub fn requested(&mut self) {
        if self.status == RefundStatus::Pending {
            self.status = RefundStatus::Requested;
        }
    }

    /// The CA accepted the refund itself (its refund call succeeded).
    pub fn approved_by_ca(&mut self) -> Option<RefundEvent> {
        matches!(self.status, RefundStatus::Pending | RefundStatus::Requested).then(|| {
            self.status = RefundStatus::Approved;
            RefundEvent::Approved
        })
    }

    /// The operation ended without the money (refused, withdrawn): `why` says how.
    pub fn denied(&mut self, why: &str) -> Option<RefundEvent> {
        (!self.status.is_final()).then(|| {
            self.status = RefundStatus::Denied;
            self.overdue = false;
            self.note = Some(why.to_owned());
            RefundEvent::Denied
        })
    }

    /// The operation completed at `at`: the money is due `max_business_days` (or
    /// [`DEFAULT_DUE_BUSINESS_DAYS`]) business days later. Set once.
    pub fn due_from(&mut self, at: DateTime<Utc>, max_business_days: Option<u32>, cal: &Calendar) {
        if self.due_by.is_none() {
            let days = max_business_days.unwrap_or(DEFAULT_DUE_BUSINESS_DAYS);
            self.due_by = Some(cal.step_forward(at, days));
        }
    }

    /// `due_by` passed at `now` with the money not in: overdue, told once.
    pub fn check_overdue(&mut self, now: DateTime<Utc>) -> Option<RefundEvent> {
        let late = self.due_by.is_some_and(|d| d <= now);
        (late && !self.overdue && !self.status.is_final()).then(|| {
            self.overdue = true;
            RefundEvent::Overdue
        })
    }
}

/// What a ledger view sums, for one provider and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub provider: String,
    pub currency: Currency,
    /// Every promised amount (a discretionary refund promises none).
    pub expected: Amount,
    /// What arrived in this currency.
    pub credited: Amount,
    /// Promised by the records neither credited nor denied.
    pub outstanding: Amount,
    pub overdue: u64,
    pub mismatched: u64,
}

impl Totals {
    pub fn new(provider: String, currency: Currency) -> Totals {
        Totals {
            provider,
            currency,
            expected: Amount::ZERO,
            credited: Amount::ZERO,
            outstanding: Amount::ZERO,
            overdue: 0,
            mismatched: 0,
        }
    }

    /// Adds one record: its expected amount, what was credited (in this currency) and its
    /// flags.
    pub fn add(&mut self, record: &RefundRecord) {
        let credited = record
            .credited
            .as_ref()
            .filter(|c| c.money.currency == self.currency)
            .map_or(Amount::ZERO, |c| c.money.amount);
        if let Some(expected) = record.expected {
            self.expected = self.expected.plus(expected.amount);
            if !record.status.is_final() {
                self.outstanding = self.outstanding.plus(expected.amount);
            }
        }
        self.credited = self.credited.plus(credited);
        self.overdue += u64::from(record.overdue);
        self.mismatched += u64::from(record.mismatch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Amount;

    fn usd(s: &str) -> Money {
        Money::new(s.parse().unwrap(), "USD".parse().unwrap())
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn credit(m: Money) -> Report {
        Report::Credited(Credit {
            money: m,
            reference: Some("CR-1".into()),
            at: at("2026-07-10T00:00:00Z"),
        })
    }

    #[test]
    fn only_a_promise_of_money_has_a_record() {
        let paid = usd("150.00");
        assert!(RefundRecord::promised(&Refund::none(paid.currency)).is_none());
        let full = RefundRecord::promised(&Refund::full(paid)).unwrap();
        assert_eq!(
            (full.expected, full.status),
            (Some(paid), RefundStatus::Pending)
        );
        let disc = RefundRecord::promised(&Refund::discretionary(paid)).unwrap();
        assert_eq!(disc.expected, None);
    }

    #[test]
    fn the_status_moves_forward_and_stops_when_final() {
        let promise = Refund::full(usd("150.00"));
        let mut r = RefundRecord::promised(&promise).unwrap();
        r.requested();
        assert_eq!(r.status, RefundStatus::Requested);
        assert_eq!(
            r.report(Report::Approved, &promise, None),
            Ok(vec![RefundEvent::Approved])
        );
        assert!(r.report(Report::Approved, &promise, None).is_err());
        r.requested();
        assert_eq!(r.status, RefundStatus::Approved, "never back");
        assert_eq!(
            r.report(credit(usd("150")), &promise, Some("seen".into())),
            Ok(vec![RefundEvent::Credited])
        );
        assert!(!r.mismatch, "150 is 150.00");
        assert_eq!(r.note.as_deref(), Some("seen"));
        for report in [Report::Approved, Report::Denied, credit(usd("1.00"))] {
            assert_eq!(
                r.report(report, &promise, None),
                Err(Final("the refund is already credited".into()))
            );
        }
        assert_eq!(r.denied("refused"), None);
        assert_eq!(r.approved_by_ca(), None);
    }

    #[test]
    fn a_credit_other_than_expected_is_flagged() {
        let promise = Refund::partial("100.00".parse().unwrap(), "USD".parse().unwrap());
        let mut r = RefundRecord::promised(&promise).unwrap();
        assert_eq!(
            r.report(credit(usd("90.00")), &promise, None),
            Ok(vec![RefundEvent::Credited, RefundEvent::Mismatch])
        );
        assert!(r.mismatch);
        let mut r = RefundRecord::promised(&promise).unwrap();
        let eur = Money::new("100.00".parse().unwrap(), "EUR".parse().unwrap());
        r.report(credit(eur), &promise, None).unwrap();
        assert!(r.mismatch, "another currency");
        // Discretionary: up to the quote's most is fine, more is not.
        let promise = Refund::discretionary(usd("120.00"));
        let mut r = RefundRecord::promised(&promise).unwrap();
        r.report(credit(usd("60.00")), &promise, None).unwrap();
        assert!(!r.mismatch);
        let mut r = RefundRecord::promised(&promise).unwrap();
        r.report(credit(usd("120.01")), &promise, None).unwrap();
        assert!(r.mismatch);
    }

    #[test]
    fn due_by_counts_business_days_and_overdue_is_told_once() {
        let promise = Refund::full(usd("150.00"));
        let mut r = RefundRecord::promised(&promise).unwrap();
        let cal = Calendar::new(["2026-07-03".parse().unwrap()]);
        // Wed 1 July + 3 business days: Thu 2, (Fri 3 holiday, weekend) Mon 6, Tue 7.
        r.due_from(at("2026-07-01T10:00:00Z"), Some(3), &cal);
        assert_eq!(r.due_by, Some(at("2026-07-07T10:00:00Z")));
        r.due_from(at("2026-08-01T10:00:00Z"), Some(3), &cal);
        assert_eq!(r.due_by, Some(at("2026-07-07T10:00:00Z")), "set once");
        assert_eq!(r.check_overdue(at("2026-07-07T09:59:59Z")), None);
        assert_eq!(
            r.check_overdue(at("2026-07-07T10:00:00Z")),
            Some(RefundEvent::Overdue)
        );
        assert!(r.overdue);
        assert_eq!(r.check_overdue(at("2026-07-09T00:00:00Z")), None, "once");
        r.report(credit(usd("150.00")), &promise, None).unwrap();
        assert!(!r.overdue, "credited late is no longer overdue");
        // No ETA in the quote: the default.
        let mut r = RefundRecord::promised(&promise).unwrap();
        r.due_from(at("2026-07-01T10:00:00Z"), None, &Calendar::default());
        assert_eq!(r.due_by, Some(at("2026-07-15T10:00:00Z")));
        // A denied record is never overdue.
        r.denied("the CA refused");
        assert_eq!(r.check_overdue(at("2027-01-01T00:00:00Z")), None);
    }

    #[test]
    fn a_credit_reads_and_writes_with_its_currency_places() {
        let c = Credit {
            money: Money::new("12".parse::<Amount>().unwrap(), "USD".parse().unwrap()),
            reference: None,
            at: at("2026-07-10T00:00:00Z"),
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"amount": "12.00", "currency": "USD", "reference": null, "at": "2026-07-10T00:00:00Z"})
        );
        assert_eq!(serde_json::from_value::<Credit>(v).unwrap(), c);
    }

    #[test]
    fn totals_sum_expected_credited_and_outstanding() {
        let promise = Refund::full(usd("100.00"));
        let mut t = Totals::new("digicert".into(), "USD".parse().unwrap());
        let mut open = RefundRecord::promised(&promise).unwrap();
        open.overdue = true;
        let mut paid = RefundRecord::promised(&promise).unwrap();
        paid.report(credit(usd("90.00")), &promise, None).unwrap();
        for r in [&open, &paid] {
            t.add(r);
        }
        assert_eq!(t.expected.value().to_string(), "200.00");
        assert_eq!(t.credited.value().to_string(), "90.00");
        assert_eq!(t.outstanding.value().to_string(), "100.00");
        assert_eq!((t.overdue, t.mismatched), (1, 1));
    }
}
