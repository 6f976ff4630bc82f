//! Purchases end to end: the signed Stripe checkout sample becomes a
//! purchase (`course-checkout`) and `post-purchase` fulfils it; a team
//! purchase emails its purchaser the seat link; a redeemed seat makes its
//! learner a member of the team; a replayed purchase creates nothing twice.

use course::*;
use hookflow::RunStatus;
use hookflow_clients::testing::{Reply, STRIPE_PREFIX};
use serde_json::{Value, json};

use crate::world::{Backend, CHECKOUT, SITE, World, purchase};

const SESSION: &str = "cs_test_a1hookflowCourseSession0001";
const PURCHASE: &str = "purchase-cs_test_a1hookflowCourseSession0001";

/// Stripe's view of the sample's session: it used Ada's early-access coupon.
fn script_session<B: Backend>(world: &World<B>) {
    world.server.on(
        "GET",
        &format!("{STRIPE_PREFIX}/v1/checkout/sessions/{SESSION}"),
        Reply::json(
            200,
            &json!({
                "id": SESSION,
                "status": "complete",
                "payment_status": "paid",
                "payment_intent": "pi_3RhookflowCoursePayment01",
                "metadata": {"productId": "prod_cohort_4", "userId": "u_ada", "usedCouponIds": "coupon_early_access"},
            }),
        ),
    );
}

/// GIVEN Ada holds early access to the cohort through a coupon.
async fn early_access<B: Backend>(world: &World<B>) {
    let early = Entitlement {
        id: "early".into(),
        user_id: "u_ada".into(),
        entitlement_type: COHORT_CONTENT_ACCESS.into(),
        resource_id: Some("cohort_4".into()),
        source_type: "COUPON".into(),
        source_id: "coupon_early_access".into(),
        organization_id: None,
        cohort_id: None,
        discord_role_id: None,
        deleted_at: None,
    };
    world
        .put(ENTITLEMENTS, &entitlement_key("u_ada", "early"), &early)
        .await;
}

pub async fn an_individual_cohort_purchase_is_fulfilled_from_the_signed_checkout<B: Backend>(
    world: World<B>,
) {
    script_session(&world);
    early_access(&world).await;
    // WHEN Stripe delivers the course checkout
    world.deliver(CHECKOUT).await;
    // THEN it became a purchase and `purchase/created`
    let checkout = world.only("course-checkout").await;
    assert_eq!(checkout.status, RunStatus::Completed, "{checkout:#?}");
    let recorded: Purchase = world.get(PURCHASES, PURCHASE).await.unwrap();
    assert_eq!((recorded.user_id.as_str(), recorded.quantity), ("u_ada", 1));
    assert!(
        world.runs_of("record-checkout-payment").await.is_empty(),
        "not a booking"
    );
    // AND post-purchase fulfilled it: access to the cohort and all inside
    let run = world.only("post-purchase").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output.as_ref().unwrap()["purchase"], "individual");
    assert_eq!(
        world.access("u_ada").await,
        ["cohort_4", "lesson_1", "lesson_2", "ws_async", "ws_rust"]
    );
    let all = world.entitlements("u_ada").await;
    let role = all
        .iter()
        .find(|e| e.entitlement_type == COHORT_DISCORD_ROLE)
        .unwrap();
    assert_eq!(role.discord_role_id.as_deref(), Some("role_cohort_4"));
    // AND the coupon's early access is revoked, not deleted
    let early = all.iter().find(|e| e.id == "early").unwrap();
    assert!(early.deleted_at.is_some());
    // AND the learner is in their own organization, enrolled in the cohort
    let membership: Membership = world
        .get(MEMBERSHIPS, &membership_key("personal-u_ada", "u_ada"))
        .await
        .unwrap();
    assert_eq!(membership.roles, ["learner"]);
    let enrolled: Option<Enrollment> = world
        .get(ENROLLMENTS, &enrollment_key("cohort_4", "u_ada"))
        .await;
    assert!(enrolled.is_some());
    // AND the events went out: coupon grants, the Discord role
    assert_eq!(
        world.spied("coupon/grant-entitlements-for-purchase").await,
        [json!({"purchaseId": PURCHASE, "userId": "u_ada", "productId": "prod_cohort_4"})]
    );
    assert_eq!(
        world.spied("discord/user-added-to-cohort").await,
        [json!({"cohortId": "cohort_4", "userId": "u_ada", "discordRoleId": "role_cohort_4"})]
    );
    // AND one welcome email, the cohort's, to Ada
    let emails = world.emails();
    assert_eq!(emails.len(), 1, "{emails:#?}");
    assert_eq!(emails[0]["to"], json!(["ada@example.com"]));
    assert_eq!(emails[0]["subject"], "Welcome to Cohort 4!");
    assert_eq!(
        emails[0]["tags"],
        json!([{"name": "template", "value": "cohort-welcome"}])
    );
    assert!(
        emails[0]["html"]
            .as_str()
            .unwrap()
            .contains(&format!("{SITE}/cohorts/cohort-4"))
    );
    // AND every per-resource step has its resource in its id
    let steps: Vec<String> = world
        .view(&run.id)
        .await
        .steps
        .iter()
        .map(|s| s.id.clone())
        .collect();
    for id in [
        "load-resource-cohort_4",
        "discord-role-event-cohort_4",
        "create-discord-entitlement-cohort_4",
        "create-content-entitlements-cohort_4",
        "send-welcome-email-cohort_4",
    ] {
        assert!(steps.iter().any(|s| s == id), "{id} in {steps:?}");
    }

    // WHEN the app emits `purchase/created` for it again
    let before = world.entitlements("u_ada").await;
    world
        .send(
            "purchase/created",
            json!({"purchaseId": PURCHASE, "productType": "cohort", "checkoutSessionId": SESSION}),
        )
        .await;
    // THEN no second fulfilment: one run per purchase, nothing sent twice
    let fulfilled: Vec<_> = world
        .runs_of("post-purchase")
        .await
        .into_iter()
        .filter(|r| r.status == RunStatus::Completed)
        .collect();
    assert_eq!(fulfilled.len(), 1);
    assert_eq!(world.emails().len(), 1);
    assert_eq!(world.entitlements("u_ada").await, before);

    // WHEN Stripe redelivers the webhook
    world.deliver(CHECKOUT).await;
    // THEN it is the same event: no second purchase run either
    assert_eq!(world.runs_of("course-checkout").await.len(), 1);
    assert_eq!(world.emails().len(), 1);

    // WHEN an operator replays the fulfilment itself (a new run, same event)
    world.env.engine().replay(&run.id).await.unwrap();
    world.env.settle().await;
    // THEN it completes again, and emits, grants and sends nothing new
    let completed = world
        .runs_of("post-purchase")
        .await
        .into_iter()
        .filter(|r| r.status == RunStatus::Completed)
        .count();
    assert_eq!(completed, 2);
    assert_eq!(
        world.emails().len(),
        1,
        "the welcome email is recorded as sent"
    );
    assert_eq!(
        world
            .spied("coupon/grant-entitlements-for-purchase")
            .await
            .len(),
        1
    );
    assert_eq!(world.spied("discord/user-added-to-cohort").await.len(), 1);
    assert_eq!(world.entitlements("u_ada").await, before);
}

pub async fn a_team_purchase_emails_the_purchaser_the_seat_link<B: Backend>(world: World<B>) {
    // GIVEN Bob buys 5 seats of the cohort (the storefront's session)
    let mut body: Value = serde_json::from_str(
        serde_json::from_str::<Value>(CHECKOUT).unwrap()["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let session = &mut body["data"]["object"];
    session["id"] = json!("cs_team_1");
    session["payment_intent"] = json!("pi_team_1");
    session["metadata"] = json!({"productId": "prod_cohort_4", "userId": "u_bob", "quantity": "5"});
    world.server.on(
        "GET",
        &format!("{STRIPE_PREFIX}/v1/checkout/sessions/cs_team_1"),
        Reply::json(
            200,
            &json!({"id": "cs_team_1", "payment_status": "paid", "metadata": {}}),
        ),
    );
    world.send("stripe/checkout.session.completed", body).await;
    // THEN a team purchase with a bulk coupon of 5 seats
    let team: Purchase = world.get(PURCHASES, "purchase-cs_team_1").await.unwrap();
    assert!(team.is_team());
    let coupon: Coupon = world.get(COUPONS, "bulk-cs_team_1").await.unwrap();
    assert_eq!(
        (coupon.max_uses, coupon.bulk_purchase_id.as_deref()),
        (5, Some("purchase-cs_team_1"))
    );
    // AND the purchaser gets the seat link, not access
    let run = world.only("post-purchase").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output.as_ref().unwrap()["purchase"], "team");
    assert!(world.access("u_bob").await.is_empty());
    assert!(world.spied("discord/user-added-to-cohort").await.is_empty());
    let emails = world.emails();
    assert_eq!(emails.len(), 1, "{emails:#?}");
    assert_eq!(emails[0]["to"], json!(["bob@example.com"]));
    assert_eq!(emails[0]["subject"], "Your team's seats for Cohort 4");
    let html = emails[0]["html"].as_str().unwrap();
    assert!(
        html.contains(&format!("{SITE}/?code=bulk-cs_team_1")) && html.contains("5 seats"),
        "{html}"
    );
}

pub async fn a_redeemed_seat_gives_the_learner_access_in_the_team<B: Backend>(world: World<B>) {
    // GIVEN Bob's team purchase and its coupon, and Grace redeeming a seat
    let team = Purchase {
        quantity: 5,
        bulk_coupon_id: Some("bulk_team".into()),
        organization_id: Some("org_acme".into()),
        ..purchase("p_team", "u_bob", "prod_cohort_4")
    };
    world.put(PURCHASES, "p_team", &team).await;
    let coupon = Coupon {
        id: "bulk_team".into(),
        max_uses: 5,
        used_count: 1,
        restricted_to_product_id: Some("prod_cohort_4".into()),
        bulk_purchase_id: Some("p_team".into()),
    };
    world.put(COUPONS, "bulk_team", &coupon).await;
    let seat = Purchase {
        total_amount: 0,
        redeemed_bulk_coupon_id: Some("bulk_team".into()),
        organization_id: Some("org_acme".into()),
        ..purchase("p_seat", "u_grace", "prod_cohort_4")
    };
    world.put(PURCHASES, "p_seat", &seat).await;
    // WHEN the redemption is announced
    world
        .send(
            "coupon/full-price-redeemed",
            json!({"purchaseId": "p_seat", "productType": "cohort"}),
        )
        .await;
    // THEN Grace has the cohort, as a learner of the team, invited by Bob
    let run = world.only("post-purchase").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output.as_ref().unwrap()["purchase"], "redeemed-seat");
    assert_eq!(world.access("u_grace").await.len(), 5);
    let membership: Membership = world
        .get(MEMBERSHIPS, &membership_key("org_acme", "u_grace"))
        .await
        .unwrap();
    assert_eq!(membership.invited_by_id.as_deref(), Some("u_bob"));
    // AND no Stripe lookup (a redeemed seat has no checkout)
    let lookups: Vec<_> = world
        .server
        .requests()
        .into_iter()
        .filter(|r| {
            r.path
                .starts_with(&format!("{STRIPE_PREFIX}/v1/checkout/sessions/"))
        })
        .collect();
    assert!(lookups.is_empty(), "{lookups:?}");
    let emails = world.emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["to"], json!(["grace@example.com"]));
    assert!(
        emails[0]["html"]
            .as_str()
            .unwrap()
            .contains("Your team gave you a seat")
    );
}

pub async fn a_self_paced_purchase_grants_the_workshop_and_other_products_are_not_ours<
    B: Backend,
>(
    world: World<B>,
) {
    world
        .put(
            PURCHASES,
            "p_solo",
            &purchase("p_solo", "u_bob", "prod_workshop"),
        )
        .await;
    world
        .put(
            PURCHASES,
            "p_live",
            &purchase("p_live", "u_bob", "prod_workshop"),
        )
        .await;
    world
        .send(
            "purchase/created",
            json!({"purchaseId": "p_solo", "productType": "self-paced"}),
        )
        .await;
    world
        .send(
            "purchase/created",
            json!({"purchaseId": "p_live", "productType": "live"}),
        )
        .await;
    let run = world.only("post-purchase").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(world.access("u_bob").await, ["ws_solo"]);
    let emails = world.emails();
    assert_eq!(emails.len(), 1, "{emails:#?}");
    assert_eq!(emails[0]["subject"], "Welcome to Solo Workshop!");
    assert_eq!(emails[0]["tags"][0]["value"], "workshop-welcome");
}

pub async fn a_missing_purchase_fails_at_once<B: Backend>(world: World<B>) {
    world
        .send(
            "purchase/created",
            json!({"purchaseId": "p_nope", "productType": "cohort"}),
        )
        .await;
    let run = world.only("post-purchase").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error.as_deref().unwrap().contains("Purchase not found"),
        "{run:#?}"
    );
    assert_eq!(run.attempt, 0, "not retried");
}
