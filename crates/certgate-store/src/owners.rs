//! Who owns a CA order in a shared CA account (`order_owners`): claimed in the transaction
//! that creates an operation or writes a watched order, so that two tenants racing for one
//! order get one winner (the table's primary key decides, on every gateway sharing the
//! database); released with a watch that was the only claim; moved by the operator (audited).

use crate::{AuditEntry, Result, Store};
use certgate_core::TenantId;
use sqlx::{Any, Transaction};

/// A CA order in a shared account: the CA service (client and normalized base URL) and the
/// order's id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRef<'a> {
    pub account: &'a str,
    pub order: &'a str,
}

/// A tenant's claim on a CA order.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub order: OrderRef<'a>,
    pub tenant: &'a TenantId,
    /// The provider it is claimed through (shown to the operator).
    pub provider: &'a str,
    /// An operation's claim (or the operator's) outlives the watch of the order.
    pub sticky: bool,
    pub now: i64,
}

/// Whose the order is after a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// The claiming tenant's (now or already).
    Ours,
    /// Another tenant's: nothing may be done on it.
    Elsewhere,
}

impl Claim<'_> {
    /// Claims the order in `tx` (the caller's transaction, rolled back on `Elsewhere`).
    pub(crate) async fn apply(&self, tx: &mut Transaction<'_, Any>) -> Result<Claimed> {
        sqlx::query(
            "INSERT INTO order_owners (account, order_ref, tenant, provider, sticky, bound_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account, order_ref) DO NOTHING",
        )
        .bind(self.order.account)
        .bind(self.order.order)
        .bind(self.tenant.as_str())
        .bind(self.provider)
        .bind(i64::from(self.sticky))
        .bind(self.now)
        .execute(&mut **tx)
        .await?;
        let owner: String = sqlx::query_scalar(
            "SELECT tenant FROM order_owners WHERE account = $1 AND order_ref = $2",
        )
        .bind(self.order.account)
        .bind(self.order.order)
        .fetch_one(&mut **tx)
        .await?;
        if owner != self.tenant.as_str() {
            return Ok(Claimed::Elsewhere);
        }
        if self.sticky {
            sqlx::query(
                "UPDATE order_owners SET sticky = 1 WHERE account = $1 AND order_ref = $2 AND sticky = 0",
            )
            .bind(self.order.account)
            .bind(self.order.order)
            .execute(&mut **tx)
            .await?;
        }
        Ok(Claimed::Ours)
    }
}

/// A tenant's claim on a CA order to let go of, whatever made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disown {
    pub account: String,
    pub order: String,
    pub tenant: TenantId,
}

impl Disown {
    pub(crate) async fn write(
        &self,
        tx: &mut Transaction<'_, Any>,
    ) -> std::result::Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM order_owners WHERE account = $1 AND order_ref = $2 AND tenant = $3",
        )
        .bind(&self.account)
        .bind(&self.order)
        .bind(self.tenant.as_str())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Releases `tenant`'s claim on `order` if only a watch made it.
pub(crate) async fn release_watch(
    tx: &mut Transaction<'_, Any>,
    order: OrderRef<'_>,
    tenant: &TenantId,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM order_owners WHERE account = $1 AND order_ref = $2 AND tenant = $3 AND sticky = 0",
    )
    .bind(order.account)
    .bind(order.order)
    .bind(tenant.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Who the operator gives orders of a shared account to.
#[derive(Debug, Clone, Copy)]
pub struct Assignment<'a> {
    /// The shared account's CA service.
    pub account: &'a str,
    pub tenant: &'a TenantId,
    pub provider: &'a str,
    pub now: i64,
    /// Who did it, for the audit log.
    pub actor: &'a str,
}

/// An order's owner as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OwnerRow {
    #[sqlx(try_from = "String")]
    pub tenant: TenantId,
    pub provider: String,
    pub sticky: i64,
    pub bound_at: i64,
}

impl Store {
    /// Claims `claim.order` for `claim.tenant` on its own (the executor, before each call of
    /// an operation made before the order was bound, or since moved by the operator). A read
    /// first: an order already the tenant's costs no write.
    pub async fn claim_order(&self, claim: &Claim<'_>) -> Result<Claimed> {
        if let Some(owner) = self.order_owner(claim.order).await? {
            if owner.tenant != *claim.tenant {
                return Ok(Claimed::Elsewhere);
            }
            if owner.sticky == 1 || !claim.sticky {
                return Ok(Claimed::Ours);
            }
        }
        let mut tx = self.pool.begin().await?;
        let claimed = claim.apply(&mut tx).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Who owns `order`, if anyone.
    pub async fn order_owner(&self, order: OrderRef<'_>) -> Result<Option<OwnerRow>> {
        let row = sqlx::query_as::<_, OwnerRow>(
            "SELECT tenant, provider, sticky, bound_at FROM order_owners WHERE account = $1 AND order_ref = $2",
        )
        .bind(order.account)
        .bind(order.order)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// The operator gives `orders` of one account to `to.tenant` (claimed or moved), each with
    /// an audit entry for the new owner and one for the previous owner. The previous owner of
    /// each order, in order.
    pub async fn assign_orders(
        &self,
        orders: &[&str],
        to: &Assignment<'_>,
    ) -> Result<Vec<Option<String>>> {
        let (account, actor) = (to.account, to.actor);
        let mut tx = self.pool.begin().await?;
        let mut before = Vec::with_capacity(orders.len());
        for order in orders {
            let old: Option<String> = sqlx::query_scalar(
                "SELECT tenant FROM order_owners WHERE account = $1 AND order_ref = $2",
            )
            .bind(account)
            .bind(*order)
            .fetch_optional(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO order_owners (account, order_ref, tenant, provider, sticky, bound_at) \
                 VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (account, order_ref) DO UPDATE \
                 SET tenant = excluded.tenant, provider = excluded.provider, sticky = 1, \
                 bound_at = excluded.bound_at",
            )
            .bind(account)
            .bind(*order)
            .bind(to.tenant.as_str())
            .bind(to.provider)
            .bind(to.now)
            .execute(&mut *tx)
            .await?;
            let target = format!("{}:{order}", to.provider);
            let moved = old.as_deref().filter(|o| *o != to.tenant.as_str());
            AuditEntry {
                tenant: to.tenant.to_owned(),
                at: to.now,
                actor: actor.to_owned(),
                action: certgate_core::audit::AuditAction::OrderAssign.to_string(),
                target: target.clone(),
                outcome: "assigned".into(),
                detail: match (&old, moved) {
                    (None, _) => "the CA order was unbound: it is this tenant's now".into(),
                    (Some(_), None) => "the CA order was already this tenant's".into(),
                    (Some(_), Some(_)) => {
                        "the operator moved the CA order here from another tenant".into()
                    }
                },
            }
            .write(&mut tx)
            .await?;
            if let Some(previous) = moved {
                AuditEntry {
                    tenant: previous.into(),
                    at: to.now,
                    actor: actor.to_owned(),
                    action: certgate_core::audit::AuditAction::OrderAssign.to_string(),
                    target,
                    outcome: "moved_away".into(),
                    detail: "the operator moved the CA order to another tenant".into(),
                }
                .write(&mut tx)
                .await?;
            }
            before.push(old);
        }
        tx.commit().await?;
        Ok(before)
    }
}
