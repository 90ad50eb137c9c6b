//! What the audit log records: each kind of action as a type, written to the log (and shown by
//! `GET /v1/audit`) under its stable name, `operation.create`, `step.revoke`, `desk.login`...

use crate::quote::Action;
use std::fmt;

/// An action the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// An operation accepted.
    OperationCreate,
    /// The first read of the order at the CA, compared with the reseller's facts.
    OperationVerify,
    OperationWithdraw,
    OperationRetry,
    /// A step's action sent to the CA.
    Step(Action),
    TicketOpen,
    TicketResolve,
    /// What the CA did with the money, as someone reported it.
    RefundReport,
    /// A CA order of a shared account assigned to a tenant.
    OrderAssign,
    /// A desk login, failed or not.
    DeskLogin,
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            AuditAction::OperationCreate => "operation.create",
            AuditAction::OperationVerify => "operation.verify",
            AuditAction::OperationWithdraw => "operation.withdraw",
            AuditAction::OperationRetry => "operation.retry",
            AuditAction::Step(action) => return write!(f, "step.{}", action.as_str()),
            AuditAction::TicketOpen => "ticket.open",
            AuditAction::TicketResolve => "ticket.resolve",
            AuditAction::RefundReport => "refund.report",
            AuditAction::OrderAssign => "order.assign",
            AuditAction::DeskLogin => "desk.login",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_keep_their_logged_names() {
        assert_eq!(AuditAction::OperationCreate.to_string(), "operation.create");
        assert_eq!(AuditAction::Step(Action::Revoke).to_string(), "step.revoke");
        assert_eq!(AuditAction::DeskLogin.to_string(), "desk.login");
    }
}
