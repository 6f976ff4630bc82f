//! `process-payout`: a creator's approved withdrawal, paid exactly once.
//!
//! On `payout/approved` (`tenantId`, `requestId`; one run per request per
//! day, one at a time; retried twice):
//! 1. `get-request` (`commerce_payouts/<tenant>:<request>`; missing or not
//!    approved: the run fails at once; `completed`: nothing to do);
//! 2. `get-creator`, `select-provider`: Stripe Connect to the creator's
//!    `stripeAccount` (none: the payout fails with that reason);
//! 3. `execute-payout`: first the transfers already in the request's
//!    transfer group (`<tenant>:<request>`): one found is the payout (an
//!    earlier attempt or run made it, even one older than Stripe's 24-hour
//!    idempotency window); else a transfer with the idempotency key
//!    `payout-<tenant>-<request>`. A timeout, a 5xx or a 409 (the same key
//!    still in flight) fails the step, which is retried with the same key;
//!    a refusal (400 or 402: insufficient balance, an account that cannot
//!    receive) is a result, not an error;
//! 4. refused: `mark-failed` (the reason on the request) and the run fails
//!    without retries (nothing a retry can change; the admins are alerted);
//!    still failing after the retries (Stripe unreachable, a revoked key):
//!    `note-unconfirmed` puts the error on the request, which stays
//!    `approved`, and the run fails; a replay looks up the group first, so it
//!    never pays twice;
//! 5. paid: `mark-completed` (with the transfer id), `record-ledger` (one
//!    payout entry per request), `send-confirmation` (Resend, keyed by the
//!    request).
//!
//! Money leaves the platform's Stripe balance (`STRIPE_API_KEY`) to the
//! creator's connected account.

use hookflow::{Concurrency, Ctx, Function, NonRetriable};
use hookflow_clients::error::ClientError;
use hookflow_clients::{NewTransfer, ResendEmail, Services};
use hookflow_docs::load_required;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::emails::{amount, render};
use crate::records::{
    CREATORS, Creator, LEDGER, LedgerEntry, LedgerKind, PAYOUTS, PayoutRequest, PayoutStatus, key,
};
use crate::{required, sender, tenant_named};

/// The function id.
pub const ID: &str = "process-payout";
/// An admin approved a withdrawal.
pub const APPROVED: &str = "payout/approved";
/// One run per request of a tenant.
pub const ONE_PER_REQUEST: &str = "event.data.tenantId + ':' + event.data.requestId";

/// Where the money goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum Provider {
    /// A Stripe Connect transfer.
    StripeConnect {
        /// `acct_...`
        destination: String,
    },
    /// No way to pay this creator.
    None,
}

/// What the payout did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// Paid.
    pub success: bool,
    /// The transfer, when paid.
    #[serde(default)]
    pub transfer_id: Option<String>,
    /// Why not, when refused.
    #[serde(default)]
    pub error: Option<String>,
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Pay a creator").reads_env([
            "COMMERCE_TENANTS",
            "STRIPE_API_KEY",
            "RESEND_API_KEY",
            "EMAIL_FROM",
        ]))
        .on_event(APPROVED)
        .idempotency(ONE_PER_REQUEST)
        .concurrency(Concurrency::new(1).key(ONE_PER_REQUEST))
        .retries(2)
        .handler(move |ctx| {
            let services = services.clone();
            async move { pay(&services, ctx).await }
        })
}

async fn set_status(
    ctx: &Ctx,
    services: &Services,
    step: &str,
    request_key: &str,
    status: PayoutStatus,
    outcome: &Outcome,
) -> anyhow::Result<()> {
    let (docs, id, outcome) = (
        services.docs.clone(),
        request_key.to_owned(),
        outcome.clone(),
    );
    ctx.step
        .run(step, move || async move {
            let now = docs.now_ms();
            let found = docs
                .update_with::<PayoutRequest, _, _>(PAYOUTS, &id, |request| {
                    let Some(mut request) = request else {
                        return (None, false);
                    };
                    request.status = status;
                    request.transfer_id.clone_from(&outcome.transfer_id);
                    request.failure.clone_from(&outcome.error);
                    request.updated_at = now;
                    (Some(request), true)
                })
                .await?;
            if !found {
                return Err(NonRetriable::new(format!("payout request {id} is gone")).into());
            }
            Ok(())
        })
        .await?;
    Ok(())
}

async fn pay(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let tenant = tenant_named(services, &ctx.event)?.clone();
    let request_id = required(&ctx.event, "requestId")?;
    let request_key = key(&tenant.id, &request_id);
    let docs = services.docs.clone();
    let request: PayoutRequest = load_required(
        &ctx,
        &docs,
        "get-request",
        (PAYOUTS, &request_key),
        &format!("payout request {request_id} of {} not found", tenant.id),
    )
    .await?;
    match request.status {
        PayoutStatus::Completed => {
            return Ok(json!({"requestId": request_id, "alreadyPaid": request.transfer_id}));
        }
        PayoutStatus::Requested => {
            return Err(NonRetriable::new(format!("payout {request_id} is not approved")).into());
        }
        PayoutStatus::Approved | PayoutStatus::Failed => {}
    }
    let creator: Creator = load_required(
        &ctx,
        &docs,
        "get-creator",
        (CREATORS, &key(&tenant.id, &request.creator_id)),
        &format!("creator {} not found", request.creator_id),
    )
    .await?;
    let account = creator.stripe_account.clone();
    let provider: Provider = ctx
        .step
        .run("select-provider", move || async move {
            Ok(match account {
                Some(destination) if destination.starts_with("acct_") => {
                    Provider::StripeConnect { destination }
                }
                _ => Provider::None,
            })
        })
        .await?;

    let (stripe, r, group) = (
        services.clients.stripe.clone(),
        request.clone(),
        request_key.clone(),
    );
    let idempotency = format!("payout-{}-{request_id}", tenant.id);
    let executed = ctx
        .step
        .run("execute-payout", move || async move {
            let Provider::StripeConnect { destination } = provider else {
                return Ok(Outcome {
                    success: false,
                    transfer_id: None,
                    error: Some("the creator has no payout account".into()),
                });
            };
            // An earlier attempt (or run) may have paid already.
            if let Some(made) = stripe.transfers_in_group(&group).await?.into_iter().next() {
                return Ok(Outcome {
                    success: true,
                    transfer_id: Some(made.id),
                    error: None,
                });
            }
            let description = format!("Creator payout {}", r.id);
            let transfer = NewTransfer {
                amount: r.amount_cents,
                currency: &r.currency,
                destination: &destination,
                transfer_group: Some(&group),
                description: Some(&description),
            };
            match stripe.create_transfer(&transfer, &idempotency).await {
                Ok(t) => Ok(Outcome {
                    success: true,
                    transfer_id: Some(t.id),
                    error: None,
                }),
                // A refusal is the payout's result; anything else is retried.
                Err(err) if refused(&err) => Ok(Outcome {
                    success: false,
                    transfer_id: None,
                    error: Some(err.to_string()),
                }),
                // The same key still in flight (after a timeout): retry.
                Err(err) if err.status() == Some(409) => Err(anyhow::anyhow!(
                    "stripe: the transfer is still in flight ({err})"
                )),
                Err(err) => Err(err.into()),
            }
        })
        .await;
    let outcome: Outcome = match executed {
        Ok(outcome) => outcome,
        Err(err) => {
            let unconfirmed = Outcome {
                success: false,
                transfer_id: None,
                error: Some(format!(
                    "not confirmed ({err}); a replay looks for the transfer before paying"
                )),
            };
            set_status(
                &ctx,
                services,
                "note-unconfirmed",
                &request_key,
                PayoutStatus::Approved,
                &unconfirmed,
            )
            .await?;
            return Err(err.into());
        }
    };

    if !outcome.success {
        set_status(
            &ctx,
            services,
            "mark-failed",
            &request_key,
            PayoutStatus::Failed,
            &outcome,
        )
        .await?;
        let why = outcome.error.unwrap_or_default();
        return Err(NonRetriable::new(format!("payout {request_id} failed: {why}")).into());
    }
    set_status(
        &ctx,
        services,
        "mark-completed",
        &request_key,
        PayoutStatus::Completed,
        &outcome,
    )
    .await?;
    let transfer_id = outcome.transfer_id.clone().unwrap_or_default();

    let entry = LedgerEntry {
        tenant_id: tenant.id.clone(),
        creator_id: request.creator_id.clone(),
        kind: LedgerKind::Payout,
        amount_cents: -request.amount_cents,
        currency: request.currency.clone(),
        reference: request_id.clone(),
        at: ctx.event.ts,
    };
    let (d, lk) = (
        docs.clone(),
        key(&tenant.id, &format!("payout:{request_id}")),
    );
    ctx.step
        .run("record-ledger", move || async move {
            Ok(d.create(LEDGER, &lk, &entry).await?)
        })
        .await?;

    let html = render(
        "payout.html",
        json!({"name": creator.name, "amount": amount(request.amount_cents, &request.currency),
            "currency": request.currency.to_uppercase(), "transfer": transfer_id,
            "shop": tenant.display_name()}),
    )?;
    let email = ResendEmail {
        from: sender(services, &tenant)?,
        to: vec![creator.email.clone()],
        subject: "Your payout is on its way".into(),
        html,
        ..ResendEmail::default()
    };
    let (resend, ik) = (
        services.clients.resend.clone(),
        format!("payout-{request_id}"),
    );
    ctx.step
        .run("send-confirmation", move || async move {
            Ok(resend.send(&email, &ik).await?)
        })
        .await?;
    Ok(json!({"requestId": request_id, "success": true, "transferId": transfer_id}))
}

/// Whether Stripe refused the transfer itself (400 or 402 and final:
/// insufficient balance, an account that cannot receive), as opposed to an
/// answer that never came, a key still in flight (409) or the platform's own
/// credentials (401, 403), which are not the creator's failure.
fn refused(err: &ClientError) -> bool {
    matches!(err.status(), Some(400 | 402))
        && matches!(err.verdict(), hookflow::failure::Verdict::Final)
}
