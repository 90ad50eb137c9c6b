//! What the lifecycle takes and gives: the executor's retry settings, the provider's
//! [`Planner`], the [`Context`] of a change, the [`Work`] to do, the [`Event`]s fed in and the
//! [`Transition`] that comes out.

use crate::audit::AuditAction;
use crate::calendar::Calendar;
use crate::client::{CaMessage, CallFailure, Observation, StepOutcome};
use crate::event::EventType;
use crate::ledger::{Credit, RefundEvent, Report};
use crate::operation::Status;
use crate::order::Order;
use crate::quote::{Action, Intent, Quote};
use crate::ticket::{Ticket, TicketStatus};
use crate::validation::InvalidInput;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The executor's retry and recheck settings, as the lifecycle uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed tries of a step (unreachable, answer lost) before it gives up.
    pub max_tries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How often a step waiting for the CA or a confirmation is checked.
    pub recheck: Duration,
    /// An unconfirmed revocation raises attention this many business days before `submit_by`.
    pub attention_business_days: u32,
}

/// What a provider offers the lifecycle: its policy, to plan again from the CA's state, and
/// its business-day calendar.
pub trait Planner: Send + Sync {
    fn plan(
        &self,
        order: &Order,
        intent: Intent,
        as_of: DateTime<Utc>,
    ) -> Result<Quote, InvalidInput>;
    fn calendar(&self) -> &Calendar;
    /// How long one call to the CA may take before it counts as timed out.
    fn call_timeout(&self) -> Duration {
        crate::config::DEFAULT_CALL_TIMEOUT
    }
}

/// After an attempt's call timeout, how much longer a CA may still be applying it: a read
/// that does not show it done is conclusive only after both.
pub const SETTLE_MARGIN: Duration = Duration::from_secs(2);

/// Everything [`apply`](super::apply) may look at besides the operation and the event. No clock, no
/// randomness of its own: same input, same transition.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub policy: RetryPolicy,
    /// In `[0, 1]`: where in its range a backoff falls.
    pub jitter: f64,
    /// The operation's provider, `None` if it is no longer configured.
    pub planner: Option<&'a dyn Planner>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// What the executor should do next for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Read the order at the CA: before the first automated step, to confirm an unconfirmed
    /// attempt, or to check a step the CA is still processing.
    Read { step: usize },
    /// Send step `step`'s action (after [`Event::Sending`] is saved).
    Send { step: usize },
    /// Open the manual ticket of step `step`.
    OpenTicket { step: usize },
    /// Nothing now: the operation is finished, or waits for a person or its next check.
    Idle,
}

/// Which kind of call an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Read,
    Send,
}

/// How a person closed a manual ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketOutcome {
    Done,
    Rejected,
}

/// What happened, fed to [`apply`](super::apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The current step's action is about to be sent (saved before the request goes out).
    Sending,
    /// The CA answered the action.
    Answered(StepOutcome),
    /// The CA reports the order so (its state `None`: its API cannot say).
    Observed(Observation),
    /// A read or a send failed (throttling aside).
    CallFailed { call: Call, failure: CallFailure },
    /// The CA throttled the call; the CA account's pace lets it go again at `until`.
    Throttled {
        call: Call,
        answer: CaMessage,
        until: DateTime<Utc>,
    },
    /// The current step's manual ticket was opened with this id.
    TicketOpened {
        id: String,
        reseller_username: String,
    },
    /// A person resolved ticket `ticket_id`, which carries step `step` (a refund ticket done
    /// may say what was credited).
    TicketResolved {
        ticket_id: String,
        step: usize,
        outcome: TicketOutcome,
        note: Option<String>,
        credited: Option<Credit>,
    },
    /// Someone reports what the CA did with the refund (API.md's `POST .../refund`).
    RefundReported {
        report: Report,
        note: Option<String>,
    },
    /// The ledger's clock: is the refund past its `due_by`?
    CheckOverdue,
    /// The reseller withdraws a refund request under review.
    Withdraw,
    /// The reseller asks to run a failed operation again.
    Retry,
    /// The operation's run panicked (a bug), with this message.
    Panicked { message: String },
}

/// When the executor should run the operation next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// At once, by the worker that holds it.
    Now,
    At(DateTime<Utc>),
    /// Not by itself: it is finished or waits for a person.
    Never,
    /// As it was: the event moved no step (a refund report, the overdue check), so the
    /// operation's own schedule, and the lease of a worker running it, stay as they are.
    Keep,
}

/// A ticket to write with the transition.
#[derive(Debug, Clone, PartialEq)]
pub enum TicketChange {
    Open(Box<Ticket>),
    Close {
        id: String,
        status: TicketStatus,
        note: Option<String>,
    },
}

/// Something a reseller's backend is told about (API.md's event types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emit {
    StatusChanged,
    AttentionNeeded { step: usize, reason: String },
    TicketOpened { ticket_id: String },
    TicketResolved { ticket_id: String },
    Refund(RefundEvent),
}

impl Emit {
    /// The event's type.
    pub fn kind(&self) -> EventType {
        match self {
            Emit::StatusChanged => EventType::OperationStatusChanged,
            Emit::AttentionNeeded { .. } => EventType::OperationAttentionNeeded,
            Emit::TicketOpened { .. } => EventType::TicketOpened,
            Emit::TicketResolved { .. } => EventType::TicketResolved,
            Emit::Refund(RefundEvent::Approved) => EventType::RefundApproved,
            Emit::Refund(RefundEvent::Credited) => EventType::RefundCredited,
            Emit::Refund(RefundEvent::Denied) => EventType::RefundDenied,
            Emit::Refund(RefundEvent::Mismatch) => EventType::RefundMismatch,
            Emit::Refund(RefundEvent::Overdue) => EventType::RefundOverdue,
        }
    }
}

/// An audit entry; whoever saves it adds the tenant, the actor and the instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditNote {
    pub action: AuditAction,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

/// A retry the transition scheduled, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryNote {
    pub tries: u32,
    pub wait: Duration,
    pub reason: String,
}

/// What an event changed, besides the operation itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The operation's status before the event.
    pub from: Status,
    pub schedule: Schedule,
    pub ticket: Option<TicketChange>,
    pub emit: Vec<Emit>,
    pub audit: Vec<AuditNote>,
    /// A step reached this status (for metrics).
    pub step_status: Option<(Action, Status)>,
    pub retry: Option<RetryNote>,
    /// The operation's refund record changed (the ledger's copy is written again).
    pub refund_changed: bool,
    /// The CA showed that the order is not the one the tenant described (`ca_mismatch`): a
    /// claim of it in a shared account is let go of, so that it does not keep the order from
    /// the tenant whose it is.
    pub disowned: bool,
}

impl Transition {
    /// No change: the operation runs again per `schedule`.
    pub fn idle(status: Status, schedule: Schedule) -> Self {
        Transition {
            schedule,
            ..Transition::new(status)
        }
    }

    /// This transition and then `later`, saved as one: the later schedule and ticket change,
    /// both transitions' events and audit entries in order.
    pub fn then(self, later: Transition) -> Transition {
        let mut emit = self.emit;
        emit.extend(later.emit);
        let mut audit = self.audit;
        audit.extend(later.audit);
        Transition {
            from: self.from,
            schedule: match later.schedule {
                Schedule::Keep => self.schedule,
                later => later,
            },
            ticket: later.ticket.or(self.ticket),
            emit,
            audit,
            step_status: later.step_status.or(self.step_status),
            retry: later.retry.or(self.retry),
            refund_changed: self.refund_changed || later.refund_changed,
            disowned: self.disowned || later.disowned,
        }
    }

    pub(super) fn new(from: Status) -> Self {
        Transition {
            from,
            schedule: Schedule::Never,
            ticket: None,
            emit: Vec::new(),
            audit: Vec::new(),
            step_status: None,
            retry: None,
            refund_changed: false,
            disowned: false,
        }
    }
}

/// An event the operation cannot take as it stands (the API answers 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);
