//! Live events and cohorts: `calendar-sync` creates, updates and recreates a
//! cancelled entry; the signed refund sample takes the buyer off every
//! event of a series (`course-refund`, `refund-remove-calendar`); a cohort
//! change fans out to one run per learner (`cohort-entitlement-sync`).

use course::*;
use hookflow::RunStatus;
use hookflow_clients::testing::{GOOGLE_CALENDAR_PREFIX, GOOGLE_IMPERSONATE_USER, Reply};
use serde_json::{Value, json};

use crate::world::{Backend, REFUND, World, product, purchase, resource};

fn entry(id: &str) -> String {
    format!("{GOOGLE_CALENDAR_PREFIX}/calendars/primary/events/{id}")
}

fn entries() -> String {
    format!("{GOOGLE_CALENDAR_PREFIX}/calendars/primary/events")
}

fn live_event(id: &str, calendar_id: Option<&str>) -> ContentResource {
    let mut event = resource(id, EVENT, "Office hours", &[]);
    event.fields.body = Some("Bring **questions**.".into());
    event.fields.starts_at = Some("2025-06-20T17:00:00Z".into());
    event.fields.ends_at = Some("2025-06-20T18:00:00Z".into());
    event.fields.calendar_id = calendar_id.map(str::to_owned);
    event
}

async fn calendar_id<B: Backend>(world: &World<B>, id: &str) -> Option<String> {
    let event: ContentResource = world.get(RESOURCES, id).await.unwrap();
    event.fields.calendar_id
}

/// The runs' outputs, sorted (runs on a standing clock share a start time).
async fn outcomes<B: Backend>(world: &World<B>) -> Vec<String> {
    let mut outputs: Vec<String> = world
        .runs_of("calendar-sync")
        .await
        .into_iter()
        .map(|r| r.output.unwrap_or(json!(r.error)).to_string())
        .collect();
    outputs.sort();
    outputs
}

pub async fn a_calendar_entry_is_created_updated_and_recreated_after_cancellation<B: Backend>(
    world: World<B>,
) {
    world
        .put(RESOURCES, "ev_1", &live_event("ev_1", None))
        .await;
    world.server.on(
        "POST",
        &entries(),
        Reply::json(200, &json!({"id": "gcal_1", "status": "confirmed"})),
    );
    // WHEN the event is created
    world
        .send("resource/created", json!({"id": "ev_1", "type": "event"}))
        .await;
    // THEN a private entry exists and its id is stored on the resource
    let created = world.server.requests_to("POST", &entries());
    assert_eq!(created.len(), 1);
    let body = created[0].json();
    assert_eq!(body["summary"], "Office hours");
    assert_eq!(
        body["description"],
        "<p>Bring <strong>questions</strong>.</p>\n"
    );
    assert_eq!(
        body["start"],
        json!({"dateTime": "2025-06-20T17:00:00Z", "timeZone": "America/Los_Angeles"})
    );
    assert_eq!(body["guestsCanInviteOthers"], false);
    assert_eq!(body["guestsCanSeeOtherGuests"], false);
    assert_eq!(body["organizer"]["email"], GOOGLE_IMPERSONATE_USER);
    assert!(body["id"].as_str().unwrap().starts_with("hf"), "{body}");
    assert_eq!(calendar_id(&world, "ev_1").await.as_deref(), Some("gcal_1"));

    // WHEN it is retitled
    world.server.on(
        "GET",
        &entry("gcal_1"),
        Reply::json(200, &json!({"id": "gcal_1", "status": "confirmed"})),
    );
    world.server.on(
        "PATCH",
        &entry("gcal_1"),
        Reply::json(200, &json!({"id": "gcal_1", "status": "confirmed"})),
    );
    world
        .docs
        .update::<ContentResource, _>(RESOURCES, "ev_1", |r| {
            let mut r = r?;
            r.fields.title = Some("Office hours (moved)".into());
            Some(r)
        })
        .await
        .unwrap();
    world
        .send("resource/updated", json!({"id": "ev_1", "type": "event"}))
        .await;
    // THEN the same entry is patched
    let patched = world.server.requests_to("PATCH", &entry("gcal_1"));
    assert_eq!(patched.len(), 1);
    assert_eq!(patched[0].json()["summary"], "Office hours (moved)");

    // WHEN someone cancelled the entry in Google, and the event changes again
    world.server.on(
        "GET",
        &entry("gcal_1"),
        Reply::json(200, &json!({"id": "gcal_1", "status": "cancelled"})),
    );
    world.server.on(
        "POST",
        &entries(),
        Reply::json(200, &json!({"id": "gcal_2", "status": "confirmed"})),
    );
    world
        .send("resource/updated", json!({"id": "ev_1", "type": "event"}))
        .await;
    // THEN a new entry replaces it, and the resource points at it
    assert_eq!(world.server.requests_to("POST", &entries()).len(), 2);
    assert_eq!(
        world.server.requests_to("PATCH", &entry("gcal_1")).len(),
        1,
        "no patch of a cancelled entry"
    );
    assert_eq!(calendar_id(&world, "ev_1").await.as_deref(), Some("gcal_2"));
    assert_eq!(
        outcomes(&world).await,
        [
            json!({"calendarId": "gcal_1", "outcome": "created"}).to_string(),
            json!({"calendarId": "gcal_1", "outcome": "updated"}).to_string(),
            json!({"calendarId": "gcal_2", "outcome": "created"}).to_string(),
        ]
    );
}

pub async fn an_event_without_times_is_skipped_and_a_missing_one_fails_at_once<B: Backend>(
    world: World<B>,
) {
    let mut draft = live_event("ev_draft", None);
    draft.fields.ends_at = None;
    world.put(RESOURCES, "ev_draft", &draft).await;
    world
        .send(
            "resource/created",
            json!({"id": "ev_draft", "type": "event"}),
        )
        .await;
    world
        .send(
            "resource/created",
            json!({"id": "ev_gone", "type": "event"}),
        )
        .await;
    world
        .send(
            "resource/created",
            json!({"id": "lesson_1", "type": "lesson"}),
        )
        .await;
    let runs = world.runs_of("calendar-sync").await;
    assert_eq!(runs.len(), 2, "a lesson is not synced");
    let skipped = json!({"skipped": true, "reason": "Missing required fields"});
    assert!(
        runs.iter().any(|r| r.output.as_ref() == Some(&skipped)),
        "{runs:#?}"
    );
    let failed = runs.iter().find(|r| r.status == RunStatus::Failed).unwrap();
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .contains("Resource not found")
    );
    assert_eq!(failed.attempt, 0);
    assert!(world.server.requests_to("POST", &entries()).is_empty());
}

pub async fn a_refunded_series_buyer_is_removed_from_every_child_event<B: Backend>(
    world: World<B>,
) {
    // GIVEN Grace bought the live series (two events with entries, one without)
    world
        .put(RESOURCES, "ev_a", &live_event("ev_a", Some("gcal_a")))
        .await;
    world
        .put(RESOURCES, "ev_b", &live_event("ev_b", Some("gcal_b")))
        .await;
    world
        .put(RESOURCES, "ev_c", &live_event("ev_c", None))
        .await;
    world
        .put(
            RESOURCES,
            "series_1",
            &resource(
                "series_1",
                EVENT_SERIES,
                "Live series",
                &["ev_a", "ev_b", "ev_c"],
            ),
        )
        .await;
    world
        .put(
            PRODUCTS,
            "prod_live_series",
            &product("prod_live_series", LIVE_PRODUCT, &["series_1"]),
        )
        .await;
    let bought = Purchase {
        payment_intent_id: Some("pi_3RhookflowCourseLive0001".into()),
        ..purchase("p_live", "u_grace", "prod_live_series")
    };
    world.put(PURCHASES, "p_live", &bought).await;
    world
        .put(
            PURCHASES_BY_PAYMENT,
            "pi_3RhookflowCourseLive0001",
            &PaymentLink {
                purchase_id: "p_live".into(),
            },
        )
        .await;
    let guests = json!([
        {"email": GOOGLE_IMPERSONATE_USER, "organizer": true},
        {"email": "Grace@Example.com"},
        {"email": "ada@example.com"},
    ]);
    for id in ["gcal_a", "gcal_b"] {
        world.server.on(
            "GET",
            &entry(id),
            Reply::json(200, &json!({"id": id, "attendees": guests})),
        );
        world
            .server
            .on("PATCH", &entry(id), Reply::json(200, &json!({"id": id})));
    }
    // WHEN Stripe delivers the refund
    world.deliver(REFUND).await;
    // THEN the purchase is refunded and the refund processed
    let refunded: Purchase = world.get(PURCHASES, "p_live").await.unwrap();
    assert_eq!(refunded.status, PurchaseStatus::Refunded);
    let run = world.only("refund-remove-calendar").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    // AND Grace is off both entries, everyone else kept
    for id in ["gcal_a", "gcal_b"] {
        let patched = world.server.requests_to("PATCH", &entry(id));
        assert_eq!(patched.len(), 1, "{id}");
        let left: Vec<Value> = patched[0].json()["attendees"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["email"].clone())
            .collect();
        assert_eq!(
            left,
            [json!(GOOGLE_IMPERSONATE_USER), json!("ada@example.com")]
        );
    }
    assert_eq!(
        run.output.unwrap(),
        json!({"outcome": "event-series-processed", "childResults": [
            {"eventId": "ev_a", "outcome": "success"},
            {"eventId": "ev_b", "outcome": "success"},
            {"eventId": "ev_c", "outcome": "skipped", "reason": "No calendarId"},
        ]})
    );
    let steps: Vec<String> = world
        .view(&run.id)
        .await
        .steps
        .iter()
        .map(|s| s.id.clone())
        .collect();
    assert!(
        steps.contains(&"remove-attendee-ev_a".to_owned())
            && steps.contains(&"remove-attendee-ev_b".to_owned()),
        "{steps:?}"
    );
}

pub async fn a_cohort_change_fans_out_one_run_per_learner<B: Backend>(world: World<B>) {
    // GIVEN three learners bought the cohort
    for (n, who) in ["u_ada", "u_bob", "u_grace"].into_iter().enumerate() {
        let id = format!("p_{n}");
        world
            .put(PURCHASES, &id, &purchase(&id, who, "prod_cohort_4"))
            .await;
        world
            .send(
                "purchase/created",
                json!({"purchaseId": id, "productType": "cohort"}),
            )
            .await;
    }
    assert_eq!(
        world.access("u_bob").await,
        ["cohort_4", "lesson_1", "lesson_2", "ws_async", "ws_rust"]
    );
    // WHEN the cohort gains a workshop and loses one
    world
        .put(
            RESOURCES,
            "ws_new",
            &resource("ws_new", WORKSHOP, "New", &[]),
        )
        .await;
    world
        .docs
        .update::<ContentResource, _>(RESOURCES, "cohort_4", |c| {
            let mut c = c?;
            c.resources = vec!["ws_rust".into(), "ws_new".into()];
            Some(c)
        })
        .await
        .unwrap();
    world
        .send("cohort/updated", json!({"cohortId": "cohort_4", "changes": {"resourcesAdded": ["ws_new"], "resourcesRemoved": ["ws_async"]}}))
        .await;
    // THEN one fan-out run and one run per learner
    let fan_out = world.only("cohort-entitlement-sync").await;
    assert_eq!(fan_out.output.unwrap()["users"], 3);
    let per_user = world.runs_of("cohort-entitlement-sync-user").await;
    assert_eq!(per_user.len(), 3);
    assert!(
        per_user.iter().all(|r| r.status == RunStatus::Completed),
        "{per_user:#?}"
    );
    // AND each learner's access follows the cohort
    for who in ["u_ada", "u_bob", "u_grace"] {
        assert_eq!(
            world.access(who).await,
            ["cohort_4", "lesson_1", "lesson_2", "ws_new", "ws_rust"],
            "{who}"
        );
    }
    // WHEN the change is announced again, nothing more moves
    world
        .send(
            "cohort/updated",
            json!({"cohortId": "cohort_4", "changes": {}}),
        )
        .await;
    let again: Vec<Value> = world
        .runs_of("cohort-entitlement-sync-user")
        .await
        .into_iter()
        .filter_map(|r| r.output)
        .filter(|o| o["added"] == json!([]) && o["removed"] == json!([]))
        .collect();
    assert_eq!(again.len(), 3);
}
