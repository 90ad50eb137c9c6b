//! Watched orders (API.md, "Watched orders"): certgate keeps a reseller's order and re-quotes
//! it for a refund on a schedule, telling the backend once when its refund window is about to
//! close and once when it closed unused. Pure: [`check`] decides from the last window, a fresh
//! quote and the clock; the server stores orders, runs the passes and writes the events.

use crate::calendar::Calendar;
use crate::operation::{Operation, Status};
use crate::order::{instant, Order, OrderState};
use crate::quote::{Action, Quote};
use chrono::{DateTime, Duration as Span, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a watched order's backend was told about its current window.
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
pub enum Notice {
    /// `order.refund_window_closing`: `submit_by` is near.
    Closing,
    /// `order.refund_window_closed`: the deadline passed with no refund asked.
    Closed,
}

crate::event::wire_names!(Notice: "notice");

/// The refund window a watched order was last quoted with, and what was told about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Window {
    #[serde(with = "instant::option")]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(with = "instant::option")]
    pub submit_by: Option<DateTime<Utc>>,
    pub notified: Vec<Notice>,
}

/// How the watch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `order.refund_window_closing` is raised this many business days before `submit_by`.
    pub notice_business_days: u32,
    /// Every watched order is quoted again at least this often.
    pub recheck: Duration,
}

/// What a check of one watched order decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub window: Window,
    /// The notices to send now, in order (a closed window before the next one's closing).
    pub notices: Vec<(Notice, Window)>,
    /// When to check it again.
    pub next_check: DateTime<Utc>,
}

/// Checks a watched order at `now` against `quote` (its refund quote as of `now`): the window
/// it had before is `last`; `refund_asked` is whether an operation for it is under way or
/// done. A window's `closing` and `closed` are each told once, and neither once a refund was
/// asked for.
pub fn check(
    last: &Window,
    quote: &Quote,
    now: DateTime<Utc>,
    settings: &Settings,
    calendar: &Calendar,
    refund_asked: bool,
) -> Checked {
    let mut window = last.clone();
    let mut notices = Vec::new();
    let mut tell = |window: &mut Window, notice: Notice| {
        if !refund_asked && !window.notified.contains(&notice) {
            window.notified.push(notice);
            notices.push((notice, window.clone()));
        }
    };
    if window.deadline.is_some_and(|d| now > d) {
        tell(&mut window, Notice::Closed);
    }
    let (deadline, submit_by) = if quote.decision.allowed {
        (quote.decision.deadline, quote.decision.submit_by)
    } else {
        (None, None)
    };
    if deadline.is_some() && deadline != window.deadline {
        window = Window {
            deadline,
            submit_by,
            notified: Vec::new(),
        };
    } else if deadline.is_some() {
        window.submit_by = submit_by;
    }
    let mut next = now + Span::from_std(settings.recheck).unwrap_or(Span::days(1));
    if let Some(deadline) = window.deadline.filter(|d| now <= *d) {
        let limit = window.submit_by.unwrap_or(deadline);
        let notice = calendar.step_back(limit, settings.notice_business_days);
        if now >= notice {
            tell(&mut window, Notice::Closing);
        } else {
            next = next.min(notice);
        }
        next = next.min(deadline + Span::seconds(1));
    }
    Checked {
        window,
        notices,
        next_check: next,
    }
}

/// Whether `status` is an operation that asks (or asked) for the order's refund: under way or
/// completed, not refused, failed or withdrawn.
pub fn asks_refund(status: Status) -> bool {
    !matches!(
        status,
        Status::Rejected | Status::Failed | Status::Withdrawn
    )
}

/// The order's facts after `op` ended: canceled or revoked once the CA did it; `None` when
/// its outcome changes none.
pub fn after_operation(op: &Operation) -> Option<Order> {
    if op.status != Status::Completed {
        return None;
    }
    let last = op
        .steps
        .iter()
        .rev()
        .find(|s| s.status == Status::Completed && s.action != Action::RefundRequest)?;
    let mut order = op.order.clone();
    match last.action {
        Action::Cancel | Action::RejectApproval => order.state = OrderState::Canceled,
        Action::Revoke => {
            order.state = OrderState::Revoked;
            order.revoked_at = Some(op.updated_at);
        }
        Action::RefundRequest => return None,
    }
    Some(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quote::{Decision, Intent, Refund};
    use crate::rule::RuleId;
    use crate::testing::{at, order};
    use serde_json::json;

    fn quote(window: Option<(&str, &str)>) -> Quote {
        let o = order(json!({}));
        let mut decision = Decision::allow(RuleId::new("R"), vec![], Refund::full(o.paid));
        match window {
            Some((deadline, submit_by)) => decision = decision.window(at(deadline), at(submit_by)),
            None => decision = Decision::refuse(o.paid.currency, RuleId::new("PAST"), None),
        }
        Quote {
            provider: "p".into(),
            intent: Intent::Refund,
            as_of: at("2026-06-01T00:00:00Z"),
            decision,
            policy_version: "v".into(),
        }
    }

    const SETTINGS: Settings = Settings {
        notice_business_days: 3,
        recheck: Duration::from_secs(86_400),
    };

    #[test]
    fn closing_is_told_once_inside_the_notice_and_closed_once_after_the_deadline() {
        let cal = Calendar::default();
        // Deadline Tue 30 June 09:00, submit_by Mon 29 June 09:00: notice from Wed 24 June.
        let q = quote(Some(("2026-06-30T09:00:00Z", "2026-06-29T09:00:00Z")));
        let c = check(
            &Window::default(),
            &q,
            at("2026-06-20T10:00:00Z"),
            &SETTINGS,
            &cal,
            false,
        );
        assert!(c.notices.is_empty());
        assert_eq!(c.window.submit_by, Some(at("2026-06-29T09:00:00Z")));
        assert_eq!(
            c.next_check,
            at("2026-06-21T10:00:00Z"),
            "the daily recheck"
        );
        let c = check(
            &c.window,
            &q,
            at("2026-06-23T12:00:00Z"),
            &SETTINGS,
            &cal,
            false,
        );
        assert_eq!(
            c.next_check,
            at("2026-06-24T09:00:00Z"),
            "the notice's start"
        );
        let c = check(
            &c.window,
            &q,
            at("2026-06-24T09:00:00Z"),
            &SETTINGS,
            &cal,
            false,
        );
        assert_eq!(c.notices.len(), 1);
        assert_eq!(c.notices[0].0, Notice::Closing);
        assert_eq!(c.window.notified, [Notice::Closing]);
        let c = check(
            &c.window,
            &q,
            at("2026-06-25T09:00:00Z"),
            &SETTINGS,
            &cal,
            false,
        );
        assert!(c.notices.is_empty(), "once per window");
        assert_eq!(c.next_check, at("2026-06-26T09:00:00Z"));
        let c = check(
            &c.window,
            &q,
            at("2026-06-30T08:00:00Z"),
            &SETTINGS,
            &cal,
            false,
        );
        assert_eq!(
            c.next_check,
            at("2026-06-30T09:00:01Z"),
            "just after the deadline"
        );
        // After the deadline the refund is refused: the window closed unused.
        let past = quote(None);
        let c = check(
            &c.window,
            &past,
            at("2026-06-30T09:00:01Z"),
            &SETTINGS,
            &cal,
            false,
        );
        assert_eq!(c.notices.len(), 1);
        assert_eq!(c.notices[0].0, Notice::Closed);
        assert_eq!(c.window.notified, [Notice::Closing, Notice::Closed]);
        assert_eq!(c.window.deadline, Some(at("2026-06-30T09:00:00Z")), "kept");
        let c = check(
            &c.window,
            &past,
            at("2026-07-30T00:00:00Z"),
            &SETTINGS,
            &cal,
            false,
        );
        assert!(c.notices.is_empty());
    }

    #[test]
    fn a_new_window_is_told_afresh_and_an_asked_refund_silences_both() {
        let cal = Calendar::default();
        let first = quote(Some(("2026-06-30T09:00:00Z", "2026-06-29T09:00:00Z")));
        let c = check(
            &Window::default(),
            &first,
            at("2026-06-29T00:00:00Z"),
            &SETTINGS,
            &cal,
            false,
        );
        assert_eq!(c.window.notified, [Notice::Closing]);
        // The order was reissued: a later window; the old one passed unused first.
        let second = quote(Some(("2026-08-30T09:00:00Z", "2026-08-28T09:00:00Z")));
        let c = check(
            &c.window,
            &second,
            at("2026-07-01T00:00:00Z"),
            &SETTINGS,
            &cal,
            false,
        );
        assert_eq!(
            c.notices.iter().map(|n| n.0).collect::<Vec<_>>(),
            [Notice::Closed]
        );
        assert_eq!(c.notices[0].1.deadline, Some(at("2026-06-30T09:00:00Z")));
        assert!(c.window.notified.is_empty());
        assert_eq!(c.window.deadline, Some(at("2026-08-30T09:00:00Z")));
        let c = check(
            &c.window,
            &second,
            at("2026-08-27T00:00:00Z"),
            &SETTINGS,
            &cal,
            true,
        );
        assert!(c.notices.is_empty(), "a refund is under way");
        let c = check(
            &c.window,
            &quote(None),
            at("2026-09-01T00:00:00Z"),
            &SETTINGS,
            &cal,
            true,
        );
        assert!(c.notices.is_empty());
    }

    #[test]
    fn an_order_inside_its_notice_when_first_watched_is_told_at_once() {
        let q = quote(Some(("2026-06-30T09:00:00Z", "2026-06-29T09:00:00Z")));
        let c = check(
            &Window::default(),
            &q,
            at("2026-06-29T10:00:00Z"),
            &SETTINGS,
            &Calendar::default(),
            false,
        );
        assert_eq!(c.notices.len(), 1, "past submit_by, before the deadline");
        assert_eq!(c.next_check, at("2026-06-30T09:00:01Z"));
    }

    #[test]
    fn statuses_ask_for_the_refund_unless_it_ended_without() {
        assert!(asks_refund(Status::Queued) && asks_refund(Status::Completed));
        assert!(!asks_refund(Status::Withdrawn) && !asks_refund(Status::Failed));
    }
}
