//! `process-payout`: a creator's approved withdrawal, paid exactly once.
//!
//! On `payout/approved` (`requestId`; one run per request, one at a time;
//! retried twice):
//! 1. `get-request`: the request (missing, or not approved: the run fails
//!    at once; already `completed`: nothing to do);
//! 2. `select-provider`: Stripe Connect to the creator's `stripeAccount`
//!    (none: the payout fails with that reason);
//! 3. `execute-payout`: a Stripe transfer with the idempotency key
//!    `payout-<requestId>`. A timeout or a 5xx fails the step, which is
//!    retried with the same key, so Stripe pays once however often it is
//!    asked; a refusal (4xx) is a result, not an error;
//! 4. refused: `mark-failed` (the reason on the request) and the run fails
//!    without retries (nothing a retry can change; the admins are alerted);
//! 5. paid: `mark-completed` (with the transfer id), `record-ledger` (one
//!    payout entry per request), `send-confirmation` (Resend, keyed by the
//!    request).

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
use crate::{required, sender, tenant_by_id};

/// The function id.
pub const ID: &str = "process-payout";
/// An admin approved a withdrawal.
pub const APPROVED: &str = "payout/approved";
/// One run per request.
pub const ONE_PER_REQUEST: &str = "event.data.requestId";

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
    request_id: &str,
    status: PayoutStatus,
    outcome: &Outcome,
) -> anyhow::Result<()> {
    let (docs, id, outcome) = (
        services.docs.clone(),
        request_id.to_owned(),
        outcome.clone(),
    );
    ctx.step
        .run(step, move || async move {
            let now = docs.now_ms();
            docs.update::<PayoutRequest, _>(PAYOUTS, &id, |request| {
                let mut request = request?;
                request.status = status;
                request.transfer_id.clone_from(&outcome.transfer_id);
                request.failure.clone_from(&outcome.error);
                request.updated_at = now;
                Some(request)
            })
            .await?;
            Ok(())
        })
        .await?;
    Ok(())
}

async fn pay(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let request_id = required(&ctx.event, "requestId")?;
    let docs = services.docs.clone();
    let request: PayoutRequest = load_required(
        &ctx,
        &docs,
        "get-request",
        (PAYOUTS, &request_id),
        &format!("payout request {request_id} not found"),
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
    let tenant = tenant_by_id(services, &request.tenant_id)?.clone();
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

    let (stripe, r) = (services.clients.stripe.clone(), request.clone());
    let outcome: Outcome = ctx
        .step
        .run("execute-payout", move || async move {
            let Provider::StripeConnect { destination } = provider else {
                return Ok(Outcome {
                    success: false,
                    transfer_id: None,
                    error: Some("the creator has no payout account".into()),
                });
            };
            let description = format!("Creator payout {}", r.id);
            let transfer = NewTransfer {
                amount: r.amount_cents,
                currency: &r.currency,
                destination: &destination,
                transfer_group: Some(&r.id),
                description: Some(&description),
            };
            match stripe
                .create_transfer(&transfer, &format!("payout-{}", r.id))
                .await
            {
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
                Err(err) => Err(err.into()),
            }
        })
        .await?;

    if !outcome.success {
        set_status(
            &ctx,
            services,
            "mark-failed",
            &request_id,
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
        &request_id,
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
        json!({"name": creator.name, "amount": amount(request.amount_cents),
            "currency": request.currency.to_uppercase(), "transfer": transfer_id,
            "shop": if tenant.name.is_empty() { &tenant.shop_domain } else { &tenant.name }}),
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

/// Whether Stripe refused the transfer (a final 4xx), as opposed to an
/// answer that never came or a failure a retry can fix.
fn refused(err: &ClientError) -> bool {
    err.status().is_some() && matches!(err.verdict(), hookflow::failure::Verdict::Final)
}
