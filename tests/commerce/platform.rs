//! The commerce platform end to end: two shops' orders synced, attributed
//! and credited; the review sequence (5 days after delivery, a follow-up 7
//! days later, skipped or cancelled by a review); the per-tenant throttle;
//! a payout retried after a timeout that pays once, and one refused; a
//! creator application; the metrics cron over three tenants; the webhook
//! queue never overlapping itself; the crons' times.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use commerce::{
    APPLICATIONS, ATTRIBUTION, Application, AttributionResult, DailyMetrics, Journey, LEDGER,
    LedgerEntry, METRICS, ORDERS, Order, PAYOUTS, PayoutRequest, PayoutStatus, QueueStatus,
    QueuedWebhook, TOUCHPOINTS, Touchpoint, WEBHOOK_QUEUE, key,
};
use hookflow::{Event, RunStatus, Started};
use hookflow_clients::testing::{Reply, SLACK_PATH};
use serde_json::{Value, json};

use crate::world::*;

const DAY: Duration = Duration::from_secs(86_400);

fn ms(rfc3339: &str) -> i64 {
    commerce::millis(rfc3339).unwrap()
}

/// A Shopify order event as the webhook receiver makes it (the shop domain
/// as tenant), for a second delivery that is not a sample redelivery.
async fn shopify_event<B: Backend>(world: &World<B>, topic: &str, shop: &str, id: &str) {
    let event = Event::new(
        format!("shopify/{topic}"),
        json!({"id": id.parse::<i64>().unwrap()}),
    )
    .with_tenant(shop);
    world.env.engine().ingest(vec![event]).await.unwrap();
    world.env.settle().await;
}

pub async fn orders_are_synced_attributed_and_credited_per_tenant<B: Backend>(world: World<B>) {
    // GIVEN south's creator owns GRACE15, and north's shopper came from
    // Instagram, then an email
    world.seed_creator("south", "grace_c", "GRACE15").await;
    let placed = ms("2025-06-02T10:18:30Z");
    let journey = Journey {
        touchpoints: vec![
            Touchpoint {
                channel: "instagram".into(),
                at: placed - 3 * 86_400_000,
                campaign: Some("june".into()),
            },
            Touchpoint {
                channel: "email".into(),
                at: placed - 3_600_000,
                campaign: None,
            },
        ],
    };
    world
        .put(TOUCHPOINTS, &key("north", "v_ada_01"), &journey)
        .await;
    // WHEN each shop's order arrives
    world.deliver(NORTH_CREATED).await;
    world.deliver(SOUTH_CREATED).await;
    // THEN each is read with its own shop's token and kept under its tenant
    for (shop, token) in [(NORTH_SHOP, "shpat_north"), (SOUTH_SHOP, "shpat_south")] {
        let asked = world.server.requests_to("POST", &shopify(shop));
        assert_eq!(asked.len(), 1, "{shop}");
        assert_eq!(asked[0].header("x-shopify-access-token"), Some(token));
    }
    let north: Order = world.get(ORDERS, &key("north", NORTH_ORDER)).await.unwrap();
    assert_eq!(
        (north.total_cents, north.currency.as_str()),
        (15_000, "USD")
    );
    assert_eq!(north.delivered_at, None);
    let south: Order = world.get(ORDERS, &key("south", SOUTH_ORDER)).await.unwrap();
    assert_eq!(south.discount_codes, ["GRACE15"]);
    assert!(
        world
            .get::<Order>(ORDERS, &key("north", SOUTH_ORDER))
            .await
            .is_none()
    );
    // AND attributed under every model
    let a: AttributionResult = world
        .get(ATTRIBUTION, &key("north", NORTH_ORDER))
        .await
        .unwrap();
    assert_eq!(a.touchpoints, 2);
    assert_eq!(a.models["first_touch"]["instagram"], 15_000);
    assert_eq!(a.models["last_touch"]["email"], 15_000);
    assert_eq!(a.models["linear"]["email"], 7_500);
    let s: AttributionResult = world
        .get(ATTRIBUTION, &key("south", SOUTH_ORDER))
        .await
        .unwrap();
    assert_eq!(s.models["linear"]["direct"], 6_490);
    // AND reported to north's GA4 and Meta (south has neither)
    let ga4 = world.server.requests_to("POST", &ga4_path());
    assert_eq!(ga4.len(), 1);
    let params = &ga4[0].json()["events"][0]["params"];
    assert_eq!(
        (params["transaction_id"].as_str(), params["source"].as_str()),
        (Some(NORTH_ORDER), Some("instagram"))
    );
    assert_eq!(ga4[0].json()["client_id"], "v_ada_01");
    let meta = world.server.requests_to("POST", &meta_path());
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0].json()["data"][0]["event_name"], "Purchase");
    // AND the code's creator earned 10% of south's order, once
    let commission = key("south", &format!("commission:{SOUTH_ORDER}"));
    let entry: LedgerEntry = world.get(LEDGER, &commission).await.unwrap();
    assert_eq!(
        (entry.creator_id.as_str(), entry.amount_cents),
        ("grace_c", 590)
    );
    // AND north's endpoint has an order.synced delivery queued (south has none)
    let queued = world.docs.list_docs(WEBHOOK_QUEUE, None, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].value["tenantId"], "north");
    // WHEN Shopify redelivers and an operator replays south's sync
    world.deliver(SOUTH_CREATED).await;
    let syncs = world.runs_of(commerce::orders::ID).await;
    assert_eq!(syncs.len(), 2, "a redelivery is deduplicated");
    let south_sync = syncs
        .iter()
        .find(|r| r.event.tenant.as_deref() == Some(SOUTH_SHOP))
        .unwrap();
    world.env.engine().replay(&south_sync.id).await.unwrap();
    world.env.settle().await;
    // THEN the order is re-read but nothing is attributed or credited twice
    let syncs = world.runs_of(commerce::orders::ID).await;
    assert_eq!(syncs.len(), 3);
    assert!(
        syncs.iter().all(|r| r.status == RunStatus::Completed),
        "{syncs:#?}"
    );
    assert_eq!(world.runs_of(commerce::attribution::ID).await.len(), 2);
    let replayed = syncs.iter().find(|r| r.replay_of.is_some()).unwrap();
    assert_eq!(
        replayed.output.as_ref().unwrap()["attributionRequested"],
        false
    );
    let entries = world.docs.list_docs(LEDGER, None, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
}

fn sequence_of(run: &hookflow::Run) -> u64 {
    run.event.data["sequence"].as_u64().unwrap()
}

pub async fn the_review_sequence_follows_delivery<B: Backend>(world: World<B>) {
    // GIVEN north's order, not yet delivered
    world.deliver(NORTH_CREATED).await;
    assert!(world.runs_of(commerce::reviews::SEND_ID).await.is_empty());
    // WHEN Shopify says it was delivered, and sends another update after
    world.server.on(
        "POST",
        &shopify(NORTH_SHOP),
        Reply::json(200, &north_order(true)),
    );
    world.deliver(NORTH_DELIVERED).await;
    shopify_event(&world, "orders/updated", NORTH_SHOP, NORTH_ORDER).await;
    let order: Order = world.get(ORDERS, &key("north", NORTH_ORDER)).await.unwrap();
    assert_eq!(order.delivered_at, Some(ms(NORTH_DELIVERED_AT)));
    let due = ms(NORTH_DELIVERED_AT) + 5 * 86_400_000;
    // THEN nothing is sent before 5 days after delivery
    world.advance_to(due - 60_000).await;
    assert!(world.runs_of(commerce::reviews::SEND_ID).await.is_empty());
    assert!(world.emails().is_empty());
    // AND the first email goes out then, once (the second update scheduled nothing)
    world.advance(Duration::from_secs(120)).await;
    let runs = world.runs_of(commerce::reviews::SEND_ID).await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0].status, RunStatus::Completed, "{runs:#?}");
    assert!(runs[0].started_at.unwrap() >= due - world.precision);
    let emails = world.emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["to"], json!(["ada@example.com"]));
    assert_eq!(emails[0]["from"], "north <reviews@north.example>");
    // (minijinja escapes `/` in HTML as `&#x2f;`, which every reader decodes)
    let html = emails[0]["html"].as_str().unwrap().replace("&#x2f;", "/");
    assert!(
        html.contains("10% off") && html.contains(&format!("THANKS10-{NORTH_ORDER}")),
        "{html}"
    );
    assert!(
        html.contains(&format!("https://north.example/review?order={NORTH_ORDER}")),
        "{html}"
    );
    let codes: Vec<Value> = world
        .server
        .requests_to("POST", &shopify(NORTH_SHOP))
        .iter()
        .map(|r| r.json())
        .filter(|b| {
            b["query"]
                .as_str()
                .unwrap()
                .contains("discountCodeBasicCreate")
        })
        .collect();
    assert_eq!(
        codes.len(),
        1,
        "the code exists before the email promises it"
    );
    assert_eq!(
        codes[0]["variables"]["d"]["code"],
        format!("THANKS10-{NORTH_ORDER}")
    );
    let sent = world.server.requests_to("POST", &emails_path());
    assert_eq!(
        sent[0].header("idempotency-key"),
        Some(format!("review-north-{NORTH_ORDER}-1").as_str())
    );
    // AND the follow-up 7 days later, with a better offer
    world.advance_to(due + 7 * 86_400_000 - 60_000).await;
    assert_eq!(world.emails().len(), 1);
    world.advance(Duration::from_secs(120)).await;
    let emails = world.emails();
    assert_eq!(emails.len(), 2);
    assert!(emails[1]["html"].as_str().unwrap().contains("15% off"));
    let runs = world.runs_of(commerce::reviews::SEND_ID).await;
    let mut sequences: Vec<u64> = runs.iter().map(sequence_of).collect();
    sequences.sort_unstable();
    assert_eq!(sequences, [1, 2]);
    // AND nothing after that
    world.advance(30 * DAY).await;
    assert_eq!(world.emails().len(), 2);
}

pub async fn a_review_skips_and_cancels_the_emails_of_its_order<B: Backend>(world: World<B>) {
    // GIVEN both shops' orders delivered (north's already when created)
    world.server.on(
        "POST",
        &shopify(NORTH_SHOP),
        Reply::json(200, &north_order(true)),
    );
    world.deliver(NORTH_CREATED).await;
    world.deliver(SOUTH_CREATED).await;
    world.server.on(
        "POST",
        &shopify(SOUTH_SHOP),
        Reply::json(200, &south_order(true)),
    );
    world.deliver(SOUTH_DELIVERED).await;
    // WHEN south's shopper reviews before the email is due
    let review = |tenant: &str, order: &str| json!({"tenantId": tenant, "orderId": order, "reviewId": format!("rv_{tenant}"), "rating": 5});
    world
        .send("review/submitted", review("south", SOUTH_ORDER))
        .await;
    // AND north's email provider is failing when north's email is due
    world.server.on(
        "POST",
        &emails_path(),
        Reply::json(503, &json!({"message": "down"})),
    );
    let north_due = ms(NORTH_DELIVERED_AT) + 5 * 86_400_000;
    world.advance_to(north_due).await;
    let north_run = world
        .runs_of(commerce::reviews::SEND_ID)
        .await
        .into_iter()
        .find(|r| r.event.data["tenantId"] == "north")
        .unwrap();
    assert_ne!(north_run.status, RunStatus::Completed, "{north_run:#?}");
    // AND north's shopper reviews while the run waits for its retry
    world
        .send("review/submitted", review("north", NORTH_ORDER))
        .await;
    world.server.on(
        "POST",
        &emails_path(),
        Reply::json(200, &json!({"id": "em_1"})),
    );
    world.advance(DAY).await;
    // THEN south's run skipped, north's was cancelled, and nobody got an email
    let runs = world.runs_of(commerce::reviews::SEND_ID).await;
    assert_eq!(runs.len(), 2, "no follow-up was scheduled: {runs:#?}");
    let by_tenant: BTreeMap<String, &hookflow::Run> = runs
        .iter()
        .map(|r| (r.event.data["tenantId"].as_str().unwrap().to_owned(), r))
        .collect();
    assert_eq!(by_tenant["south"].status, RunStatus::Completed);
    assert_eq!(
        by_tenant["south"].output.as_ref().unwrap()["reason"],
        "already_reviewed"
    );
    assert_eq!(by_tenant["north"].status, RunStatus::Cancelled, "{runs:#?}");
    let attempts = world.server.requests_to("POST", &emails_path());
    assert!(!attempts.is_empty(), "north's attempt reached the provider");
    assert!(
        attempts
            .iter()
            .all(|r| r.json()["to"] == json!(["ada@example.com"])),
        "only north's failed attempt reached the provider"
    );
    assert_eq!(world.runs_of(commerce::reviews::RECORD_ID).await.len(), 2);
    world.advance(10 * DAY).await;
    assert_eq!(world.runs_of(commerce::reviews::SEND_ID).await.len(), 2);
}

pub async fn the_review_throttle_spaces_each_tenants_emails<B: Backend>(world: World<B>) {
    // GIVEN 50 delivered orders in each of two shops
    let t0 = world.now_ms();
    let mut events = Vec::new();
    for tenant in ["north", "south"] {
        for n in 0..50 {
            let id = format!("o{n:02}");
            let email = format!("s{n}@{tenant}.example");
            world
                .put(
                    ORDERS,
                    &key(tenant, &id),
                    &order_record(tenant, &id, &email, 1_000, t0),
                )
                .await;
            events.push(commerce::reviews::scheduled_event(tenant, &id, 2, 0));
        }
    }
    // WHEN all 100 emails fall due at once
    world.env.engine().ingest(events).await.unwrap();
    world.env.settle().await;
    world.advance(Duration::from_secs(10)).await;
    // THEN none is dropped
    let runs = world.runs_of(commerce::reviews::SEND_ID).await;
    assert_eq!(runs.len(), 100);
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Completed),
        "{runs:#?}"
    );
    assert_eq!(world.emails().len(), 100);
    // AND each tenant's emails start at most 10 per second
    let mut starts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for run in &runs {
        let tenant = run.event.data["tenantId"].as_str().unwrap().to_owned();
        starts
            .entry(tenant)
            .or_default()
            .push(run.started_at.unwrap());
    }
    for (tenant, mut at) in starts {
        at.sort_unstable();
        assert_eq!(at.len(), 50);
        for (k, start) in at.iter().enumerate() {
            let slot = t0 + 100 * i64::try_from(k).unwrap();
            assert!(
                *start >= slot - world.precision,
                "{tenant}: start {k} at +{} ms",
                start - t0
            );
        }
        // ... and no slower: one tenant's limit is not shared with the other
        assert!(
            at[49] - t0 <= 4_900 + world.precision + 100,
            "{tenant}: 50 starts took {} ms",
            at[49] - t0
        );
        for k in 0..40 {
            assert!(
                at[k + 10] - at[k] >= 1_000 - world.precision,
                "{tenant}: 11 starts within {} ms",
                at[k + 10] - at[k]
            );
        }
    }
}

fn approved(amount_cents: i64) -> PayoutRequest {
    PayoutRequest {
        id: "po_1".into(),
        tenant_id: "north".into(),
        creator_id: "ada".into(),
        amount_cents,
        currency: "usd".into(),
        status: PayoutStatus::Approved,
        transfer_id: None,
        failure: None,
        updated_at: 0,
    }
}

pub async fn a_payout_retried_after_a_timeout_pays_once<B: Backend>(world: World<B>) {
    // GIVEN an approved payout, and Stripe answering the first transfer too
    // late (the client gives up after 5 s)
    world.seed_creator("north", "ada", "ADA10").await;
    world
        .put(PAYOUTS, &key("north", "po_1"), &approved(2_500))
        .await;
    let transfer =
        json!({"id": "tr_1", "amount": 2500, "currency": "usd", "destination": "acct_ada"});
    world.server.on_sequence(
        "POST",
        TRANSFERS,
        [
            Reply::json(200, &transfer).delayed(Duration::from_secs(6)),
            Reply::json(200, &transfer),
        ],
    );
    // WHEN the payout is processed and its step retried
    world
        .send(
            "payout/approved",
            json!({"tenantId": "north", "requestId": "po_1"}),
        )
        .await;
    world.advance(Duration::from_secs(300)).await;
    // THEN both attempts carried the same idempotency key: Stripe pays once
    let run = world.only(commerce::payouts::ID).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output.as_ref().unwrap()["transferId"], "tr_1");
    let sent = world.server.requests_to("POST", TRANSFERS);
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|r| r.header("idempotency-key") == Some("payout-north-po_1"))
    );
    assert_eq!(sent[0].form()["destination"], "acct_ada");
    assert_eq!(sent[0].form()["transfer_group"], "north:po_1");
    // AND the request is completed, the ledger debited once, the creator told
    let request: PayoutRequest = world.get(PAYOUTS, &key("north", "po_1")).await.unwrap();
    assert_eq!(request.status, PayoutStatus::Completed);
    assert_eq!(request.transfer_id.as_deref(), Some("tr_1"));
    let entry: LedgerEntry = world
        .get(LEDGER, &key("north", "payout:po_1"))
        .await
        .unwrap();
    assert_eq!(entry.amount_cents, -2_500);
    let emails = world.emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["to"], json!(["ada@creators.example"]));
    assert!(emails[0]["html"].as_str().unwrap().contains("25.00 USD"));
    // WHEN the approval is sent again, and the run replayed
    world
        .send(
            "payout/approved",
            json!({"tenantId": "north", "requestId": "po_1"}),
        )
        .await;
    assert_eq!(world.runs_of(commerce::payouts::ID).await.len(), 1);
    world.env.engine().replay(&run.id).await.unwrap();
    world.env.settle().await;
    // THEN no money moves again
    let runs = world.runs_of(commerce::payouts::ID).await;
    let replayed = runs.iter().find(|r| r.replay_of.is_some()).unwrap();
    assert_eq!(replayed.output.as_ref().unwrap()["alreadyPaid"], "tr_1");
    assert_eq!(world.server.requests_to("POST", TRANSFERS).len(), 2);
    assert_eq!(world.emails().len(), 1);
}

pub async fn a_refused_payout_is_marked_failed_and_alerts<B: Backend>(world: World<B>) {
    world.seed_creator("north", "ada", "ADA10").await;
    world
        .put(PAYOUTS, &key("north", "po_1"), &approved(900_000))
        .await;
    world.server.on(
        "POST",
        TRANSFERS,
        Reply::json(
            400,
            &json!({"error": {"type": "invalid_request_error", "code": "balance_insufficient",
                "message": "You have insufficient funds in your Stripe account."}}),
        ),
    );
    world
        .send(
            "payout/approved",
            json!({"tenantId": "north", "requestId": "po_1"}),
        )
        .await;
    world.advance(Duration::from_secs(3600)).await;
    let run = world.only(commerce::payouts::ID).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    assert_eq!(
        world.server.requests_to("POST", TRANSFERS).len(),
        1,
        "not retried"
    );
    let request: PayoutRequest = world.get(PAYOUTS, &key("north", "po_1")).await.unwrap();
    assert_eq!(request.status, PayoutStatus::Failed, "{request:#?}");
    assert!(request.failure.unwrap().contains("insufficient funds"));
    assert!(
        world
            .get::<LedgerEntry>(LEDGER, &key("north", "payout:po_1"))
            .await
            .is_none()
    );
    let alerts = world.server.requests_to("POST", SLACK_PATH);
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].text().contains(commerce::payouts::ID));
    assert!(world.emails().is_empty());
}

pub async fn a_payout_already_made_is_found_not_repeated<B: Backend>(world: World<B>) {
    // GIVEN an approved payout whose transfer Stripe already made (a run
    // that crashed after paying, replayed days later: the key is forgotten)
    world.seed_creator("north", "ada", "ADA10").await;
    world
        .put(PAYOUTS, &key("north", "po_1"), &approved(2_500))
        .await;
    world.server.on(
        "GET",
        TRANSFERS,
        Reply::json(
            200,
            &json!({"object": "list", "has_more": false, "data": [{"id": "tr_old", "amount": 2500,
                "currency": "usd", "destination": "acct_ada", "transfer_group": "north:po_1"}]}),
        ),
    );
    world
        .send(
            "payout/approved",
            json!({"tenantId": "north", "requestId": "po_1"}),
        )
        .await;
    // THEN it is adopted, not paid again
    let run = world.only(commerce::payouts::ID).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output.as_ref().unwrap()["transferId"], "tr_old");
    assert!(world.server.requests_to("POST", TRANSFERS).is_empty());
    let listed = world.server.requests_to("GET", TRANSFERS);
    assert_eq!(
        listed[0].query.as_deref(),
        Some("transfer_group=north%3Apo_1&limit=10")
    );
    let request: PayoutRequest = world.get(PAYOUTS, &key("north", "po_1")).await.unwrap();
    assert_eq!(request.status, PayoutStatus::Completed);
    // AND south cannot use north's request id to reach it
    world
        .send(
            "payout/approved",
            json!({"tenantId": "south", "requestId": "po_1"}),
        )
        .await;
    let runs = world.runs_of(commerce::payouts::ID).await;
    let south = runs
        .iter()
        .find(|r| r.event.data["tenantId"] == "south")
        .unwrap();
    assert_eq!(south.status, RunStatus::Failed, "{south:#?}");
    assert!(world.server.requests_to("POST", TRANSFERS).is_empty());
}

pub async fn a_creator_application_is_confirmed_announced_and_tracked<B: Backend>(world: World<B>) {
    for tenant in ["north", "south"] {
        let application = Application {
            tenant_id: tenant.into(),
            creator_id: "c_7".into(),
            name: "Lin <Lee>".into(),
            email: format!("lin@{tenant}.example"),
            details: json!({"instagram": "@lin"}),
        };
        world
            .put(APPLICATIONS, &key(tenant, "c_7"), &application)
            .await;
        world
            .send(
                "creator/applied",
                json!({"creatorId": "c_7", "tenantId": tenant}),
            )
            .await;
    }
    let runs = world.runs_of(commerce::applications::ID).await;
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Completed),
        "{runs:#?}"
    );
    let emails = world.emails();
    assert_eq!(emails.len(), 2);
    assert!(
        emails[0]["html"]
            .as_str()
            .unwrap()
            .contains("Lin &lt;Lee&gt;")
    );
    let alerts = world.server.requests_to("POST", SLACK_PATH);
    assert_eq!(alerts.len(), 2);
    // (escaped for Slack: a name cannot mention @channel or make a link)
    let notice = alerts[0].json()["text"].as_str().unwrap().to_owned();
    assert!(
        notice.contains("Lin &lt;Lee&gt;") && notice.contains("North"),
        "{notice}"
    );
    // Only north has a Meta pixel: one Lead, hashed email, one id per application
    let leads = world.server.requests_to("POST", &meta_path());
    assert_eq!(leads.len(), 1);
    let lead = &leads[0].json()["data"][0];
    assert_eq!(lead["event_name"], "Lead");
    assert_eq!(lead["event_id"], "lead-north-c_7");
    assert_eq!(
        lead["user_data"]["em"][0],
        hookflow_clients::meta::hash_email("lin@north.example")
    );
}

pub async fn the_metrics_cron_aggregates_yesterday_for_every_tenant<B: Backend>(world: World<B>) {
    // GIVEN orders around 2025-06-02 in two of three tenants
    let at = |h: u32, d: u32| {
        Utc.with_ymd_and_hms(2025, 6, d, h, 0, 0)
            .unwrap()
            .timestamp_millis()
    };
    let seed = [
        ("north", "n1", "a@x.example", 1_000, at(9, 2)),
        ("north", "n2", "A@x.example", 2_500, at(23, 2)),
        ("north", "n3", "b@x.example", 7_000, at(1, 3)),
        ("north", "n0", "c@x.example", 9_000, at(23, 1)),
        ("south", "s1", "d@x.example", 4_000, at(12, 2)),
    ];
    for (tenant, id, email, total, when) in seed {
        world
            .put(
                ORDERS,
                &key(tenant, id),
                &order_record(tenant, id, email, total, when),
            )
            .await;
    }
    let attribution = AttributionResult {
        tenant_id: "south".into(),
        order_id: "s1".into(),
        revenue_cents: 4_000,
        ordered_at: at(12, 2),
        touchpoints: 1,
        models: [(
            "last_touch".to_owned(),
            [("instagram".to_owned(), 4_000)].into(),
        )]
        .into(),
    };
    world
        .put(ATTRIBUTION, &key("south", "s1"), &attribution)
        .await;
    // WHEN the cron ticks at 02:00 UTC on the 3rd, and runs late
    let tick = at(2, 3);
    world.advance_to(tick + 3 * 3_600_000).await;
    world.env.tick(commerce::metrics::ID, tick).await;
    // THEN every tenant has the 2nd's metrics, by the tick's day
    let run = world.only(commerce::metrics::ID).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output.as_ref().unwrap()["tenantsProcessed"], 3);
    let steps: Vec<String> = world
        .env
        .engine()
        .run_view(&run.id)
        .await
        .unwrap()
        .unwrap()
        .steps
        .into_iter()
        .map(|s| s.id)
        .collect();
    for tenant in ["north", "south", "west"] {
        assert!(steps.contains(&format!("metrics-{tenant}")), "{steps:?}");
    }
    let world = &world;
    let metrics = |tenant: &'static str| async move {
        world
            .get::<DailyMetrics>(METRICS, &key(tenant, "2025-06-02"))
            .await
            .unwrap()
    };
    let north = metrics("north").await;
    assert_eq!(
        (north.orders, north.revenue_cents, north.customers),
        (2, 3_500, 1)
    );
    assert_eq!(north.revenue_by_channel["unattributed"], 3_500);
    let south = metrics("south").await;
    assert_eq!(south.revenue_by_channel["instagram"], 4_000);
    let west = metrics("west").await;
    assert_eq!((west.orders, west.revenue_cents), (0, 0));
}

fn row(tenant: &str, id: &str, at: i64) -> QueuedWebhook {
    QueuedWebhook {
        id: id.into(),
        tenant_id: tenant.into(),
        topic: "order.synced".into(),
        payload: json!({"orderId": id}),
        status: QueueStatus::Pending,
        attempts: 0,
        next_attempt_at: at,
        last_error: None,
        created_at: at,
    }
}

pub async fn the_webhook_queue_never_runs_two_ticks_at_once<B: Backend>(world: World<B>) {
    // GIVEN three deliveries for north (the second fails once) and one for
    // south (no endpoint)
    let t0 = world.now_ms();
    for (i, (tenant, id)) in [
        ("north", "w1"),
        ("north", "w2"),
        ("north", "w3"),
        ("south", "w4"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = row(tenant, id, t0 + i64::try_from(i).unwrap());
        world.put(WEBHOOK_QUEUE, &r.key(), &r).await;
    }
    world.server.on_sequence(
        "POST",
        HOOKS,
        [Reply::status(204), Reply::status(500), Reply::status(204)],
    );
    let tick = (t0 / 300_000 + 1) * 300_000;
    world.advance_to(tick + 300_000).await;
    // WHEN a late tick and the next one arrive together
    let id = commerce::webhook_queue::ID;
    let first = world.env.engine().fire_cron(id, tick).await.unwrap();
    let second = world
        .env
        .engine()
        .fire_cron(id, tick + 300_000)
        .await
        .unwrap();
    world.env.settle().await;
    // THEN the second is skipped while the first runs
    assert!(matches!(first, Started::Created(_)), "{first:?}");
    assert!(matches!(second, Started::Skipped(_)), "{second:?}");
    let runs = world.runs_of(id).await;
    let done: Vec<&hookflow::Run> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Completed)
        .collect();
    assert_eq!(done.len(), 1, "{runs:#?}");
    assert_eq!(
        done[0].output.as_ref().unwrap(),
        &json!({"processed": 2, "failed": 2})
    );
    // AND delivered rows are gone, the failure counted, south's dead
    let left: Vec<QueuedWebhook> = world
        .docs
        .list_docs(WEBHOOK_QUEUE, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| serde_json::from_value(d.value).unwrap())
        .collect();
    let by_id: BTreeMap<&str, &QueuedWebhook> = left.iter().map(|r| (r.id.as_str(), r)).collect();
    assert_eq!(by_id.keys().copied().collect::<Vec<_>>(), ["w2", "w4"]);
    assert_eq!(
        (by_id["w2"].attempts, by_id["w2"].status),
        (1, QueueStatus::Pending)
    );
    assert_eq!(by_id["w2"].next_attempt_at, tick + 300_000);
    assert_eq!(by_id["w4"].status, QueueStatus::Dead);
    let sent = world.server.requests_to("POST", HOOKS);
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].header("hookflow-delivery"), Some("w1"));
    assert!(
        sent[0]
            .header("hookflow-signature")
            .unwrap()
            .starts_with("t=")
    );
    // WHEN the next tick comes
    world.advance_to(tick + 600_000).await;
    world.env.tick(id, tick + 600_000).await;
    // THEN the failed row is delivered
    let remaining = world.docs.list_docs(WEBHOOK_QUEUE, None, 10).await.unwrap();
    assert_eq!(remaining.len(), 1, "only the dead row is kept");
    assert_eq!(world.server.requests_to("POST", HOOKS).len(), 4);
}

pub async fn every_cron_is_due_at_its_time<B: Backend>(world: World<B>) {
    let registry = world.env.engine().registry();
    let start = Utc
        .with_ymd_and_hms(2025, 6, 1, 0, 1, 0)
        .unwrap()
        .timestamp_millis();
    let next = |id: &str| {
        let at = registry.get(id).unwrap().next_cron_after(start).unwrap();
        chrono::DateTime::from_timestamp_millis(at)
            .unwrap()
            .to_rfc3339()
    };
    assert_eq!(next(commerce::metrics::ID), "2025-06-01T02:00:00+00:00");
    assert_eq!(
        next(commerce::webhook_queue::ID),
        "2025-06-01T00:05:00+00:00"
    );
}

/// On SQLite the engine fires crons itself: moving the fake clock past 02:00
/// UTC starts the metrics at that instant, and the queue every 5 minutes.
pub async fn the_crons_fire_on_the_fake_clock(world: World<hookflow_embedded::testing::TestEnv>) {
    world.env.engine().schedule_crons().await.unwrap();
    let two = Utc
        .with_ymd_and_hms(2025, 6, 3, 2, 0, 0)
        .unwrap()
        .timestamp_millis();
    world.advance_to(two - 60_000).await;
    assert!(world.runs_of(commerce::metrics::ID).await.is_empty());
    let queue_ticks = world.runs_of(commerce::webhook_queue::ID).await;
    assert!(!queue_ticks.is_empty());
    assert!(
        queue_ticks.iter().all(|r| r.event.ts % 300_000 == 0),
        "on the 5 minutes"
    );
    world.advance(Duration::from_secs(120)).await;
    let run = world.only(commerce::metrics::ID).await;
    assert_eq!(run.event.ts, two);
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let _: Value = run.output.unwrap();
}
