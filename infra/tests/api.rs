//! The `hookflow dev` HTTP API, driven in-process through its router.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hookflow::{FakeClock, Registry};
use hookflow_embedded::testing::START_MS;
use hookflow_embedded::{Embedded, SqliteStore, WorkerConfig};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn runtime() -> (Embedded, FakeClock) {
    let clock = FakeClock::new(START_MS);
    let registry = Registry::new(hookflow_registry::functions()).unwrap();
    let store = SqliteStore::in_memory().unwrap();
    (
        Embedded::new(
            store,
            registry,
            Arc::new(clock.clone()),
            WorkerConfig::default(),
        ),
        clock,
    )
}

async fn call(rt: &Embedded, method: &str, uri: &str, body: Option<String>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap();
    let receiver = Arc::new(hookflow_webhooks::test_secrets::receiver().unwrap());
    let response = hookflow_cli::api::router(rt.clone(), receiver)
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn events_start_runs_whose_timeline_is_visible() {
    let (rt, clock) = runtime();
    let body =
        json!([{"name": "demo/hello", "data": {"name": "Ada", "delay_secs": 10}, "id": "e1"}])
            .to_string();
    let (status, out) = call(&rt, "POST", "/events", Some(body.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(out["events"][0]["id"], "e1");
    assert_eq!(out["events"][0]["duplicate"], false);
    let (_, again) = call(&rt, "POST", "/events", Some(body)).await;
    assert_eq!(again["events"][0]["duplicate"], true);
    rt.drain().await.unwrap();

    let (status, list) = call(
        &rt,
        "GET",
        "/runs?function=hello-world&status=sleeping",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let runs = list["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let id = runs[0]["id"].as_str().unwrap();

    clock.advance(Duration::from_secs(10));
    rt.drain().await.unwrap();
    let (status, view) = call(&rt, "GET", &format!("/runs/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "completed");
    let steps: Vec<_> = view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps, ["compose", "pause", "deliver"]);
    assert_eq!(view["steps"][0]["attempts"], 1);

    let (status, replay) = call(&rt, "POST", &format!("/runs/{id}/replay"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(replay["replay_of"], id);

    // A rerun from the last step keeps the composed greeting and the pause.
    let (status, rerun) = call(&rt, "POST", &format!("/runs/{id}/rerun?from=deliver"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{rerun}");
    assert_eq!(rerun["from_step"], "deliver");
    rt.drain().await.unwrap();
    let (_, view) = call(
        &rt,
        "GET",
        &format!("/runs/{}", rerun["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(view["status"], "completed", "no pause again: {view}");
    assert_eq!(view["output"], json!({"delivered": "Hello, Ada!"}));
    let (status, _) = call(&rt, "POST", &format!("/runs/{id}/rerun?from=nope"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(&rt, "POST", &format!("/runs/{id}/rerun"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "`from` is required");
    let (status, _) = call(&rt, "POST", &format!("/runs/{id}/cancel"), None).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a completed run cannot be cancelled"
    );
}

#[tokio::test]
async fn an_events_runs_are_found_however_many_runs_came_after_it() {
    // GIVEN an event whose run sleeps, then a thousand more of its kind
    let (rt, clock) = runtime();
    let first =
        json!([{"name": "demo/hello", "id": "e-old", "data": {"name": "Ada", "delay_secs": 60}}]);
    let (_, out) = call(&rt, "POST", "/events", Some(first.to_string())).await;
    let run_id = out["run_ids"][0].as_str().unwrap().to_owned();
    rt.drain().await.unwrap();
    clock.advance(Duration::from_secs(1));
    for batch in 0..2 {
        let later: Vec<Value> = (0..500)
            .map(|i| {
                json!({"name": "demo/hello", "id": format!("e-{batch}-{i}"),
                            "data": {"name": "Bo", "delay_secs": 60}})
            })
            .collect();
        let (status, _) = call(&rt, "POST", "/events", Some(Value::from(later).to_string())).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    rt.drain().await.unwrap();
    // WHEN its run is replayed and the event is looked up
    let (status, replay) = call(&rt, "POST", &format!("/runs/{run_id}/replay"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    rt.drain().await.unwrap();
    let (status, event) = call(&rt, "GET", "/events/e-old", None).await;
    // THEN both its run and the replay are named, though more than a
    // scan's worth of runs of the function are newer than the run
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = event["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [run_id.as_str(), replay["id"].as_str().unwrap()],
        "{event}"
    );
}

#[tokio::test]
async fn cancel_stops_a_sleeping_run() {
    let (rt, clock) = runtime();
    let body = json!({"name": "demo/hello", "data": {"delay_secs": 60}}).to_string();
    call(&rt, "POST", "/events", Some(body)).await;
    rt.drain().await.unwrap();
    let (_, list) = call(&rt, "GET", "/runs", None).await;
    let id = list["runs"][0]["id"].as_str().unwrap().to_owned();
    // The worker loop applies the cancellation, as under `hookflow dev`.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn({
        let rt = rt.clone();
        async move { rt.run_workers(stopped).await }
    });
    let (status, out) = call(&rt, "POST", &format!("/runs/{id}/cancel"), None).await;
    stop.send(true).unwrap();
    workers.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["status"], "cancelled");
    clock.advance(Duration::from_secs(60));
    rt.drain().await.unwrap();
    let (_, view) = call(&rt, "GET", &format!("/runs/{id}"), None).await;
    assert_eq!(view["status"], "cancelled");
    assert_eq!(
        view["steps"].as_array().unwrap().len(),
        2,
        "deliver never ran"
    );
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let (rt, _) = runtime();
    let (status, out) = call(&rt, "POST", "/events", Some("{not json".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(out["error"].as_str().unwrap().contains("not valid JSON"));
    let (status, out) = call(
        &rt,
        "POST",
        "/events",
        Some(json!({"name": ""}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(out["error"].as_str().unwrap().contains("must not be empty"));
    let (status, _) = call(
        &rt,
        "POST",
        "/events",
        Some(json!({"data": {}}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "missing name");
    let (status, _) = call(&rt, "POST", "/events", Some("[]".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let huge = json!({"name": "a/b", "data": {"blob": "x".repeat(5 * 1024 * 1024)}}).to_string();
    let (status, _) = call(&rt, "POST", "/events", Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "over the body limit");
    let over = json!({"name": "a/b", "data": {"blob": "x".repeat(1024 * 1024)}}).to_string();
    let (status, out) = call(&rt, "POST", "/events", Some(over)).await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "over the event limit"
    );
    assert!(
        out["error"]
            .as_str()
            .unwrap()
            .contains("1048576-byte event limit"),
        "{out}"
    );
    let (_, list) = call(&rt, "GET", "/runs", None).await;
    assert!(
        list["runs"].as_array().unwrap().is_empty(),
        "nothing stored"
    );
    let (status, _) = call(&rt, "GET", "/runs/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&rt, "GET", "/runs?status=bogus", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, health) = call(&rt, "GET", "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert!(
        rt.store().count_runs(None, None).await.unwrap() == 0,
        "nothing stored by bad requests"
    );
}

#[tokio::test]
async fn dead_letters_are_listed_and_redriven() {
    use hookflow::run::{Envelope, Message, Target};
    use hookflow::store::Outbox;
    use hookflow::transition::Outgoing;
    let (rt, _) = runtime();
    let poison = Envelope::new(
        Target::Function("hello-world".into()),
        Message::Start {
            run_id: "gone".into(),
            due: None,
            trigger: None,
        },
    );
    rt.store()
        .deliver(&[Outgoing::Send { envelope: poison }])
        .await
        .unwrap();
    let delivery = rt
        .store()
        .receive(START_MS, 1, 1000)
        .await
        .unwrap()
        .pop()
        .unwrap();
    rt.store()
        .dead_letter(&delivery, "boom".into())
        .await
        .unwrap();
    let (status, list) = call(&rt, "GET", "/dead-letters", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["dead_letters"][0]["error"], "boom");
    assert_eq!(list["dead_letters"][0]["queue"], "fn:hello-world");
    let (_, health) = call(&rt, "GET", "/health", None).await;
    assert_eq!(health["dead_letters"], 1);
    let (status, out) = call(&rt, "POST", "/dead-letters/redrive", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["redriven"], 1);
    rt.drain().await.unwrap(); // the run is gone: handled and dropped
    let (_, list) = call(&rt, "GET", "/dead-letters", None).await;
    assert!(list["dead_letters"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bulk_actions_count_first_and_act_once() {
    let (rt, _) = runtime();
    for name in ["Ada", "Bob"] {
        let body = json!({"name": "demo/hello", "data": {"name": name, "delay_secs": 60}});
        call(&rt, "POST", "/events", Some(body.to_string())).await;
    }
    rt.drain().await.unwrap();
    let request = |dry: bool| {
        json!({"function": "hello-world", "status": "sleeping", "if": "event.data.name == 'Ada'",
            "action": "cancel", "dry_run": dry})
        .to_string()
    };
    let (status, dry) = call(&rt, "POST", "/runs/bulk", Some(request(true))).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(
        (dry["matched"].as_u64(), dry["dry_run"].as_bool()),
        (Some(1), Some(true))
    );
    let (_, done) = call(&rt, "POST", "/runs/bulk", Some(request(false))).await;
    assert_eq!(done["acted"].as_array().unwrap().len(), 1);
    rt.drain().await.unwrap();
    let (_, cancelled) = call(&rt, "GET", "/runs?status=cancelled", None).await;
    assert_eq!(cancelled["runs"].as_array().unwrap().len(), 1);
    let bad = json!({"action": "delete"}).to_string();
    let (status, _) = call(&rt, "POST", "/runs/bulk", Some(bad)).await;
    assert!(status.is_client_error(), "{status}");
    let bad_if = json!({"action": "cancel", "if": "event.("}).to_string();
    let (status, _) = call(&rt, "POST", "/runs/bulk", Some(bad_if)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn failed_runs_are_dead_letters_until_a_redrive_replays_them() {
    // GIVEN a run that fails for good (no commerce tenant is configured)
    let (rt, _) = runtime();
    let event =
        r#"{"name": "payout/approved", "data": {"tenantId": "north", "requestId": "po_1"}}"#;
    let (status, _) = call(&rt, "POST", "/events", Some(event.into())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    rt.drain().await.unwrap();
    // THEN it is in the dead-letter view, with its error
    let (_, view) = call(&rt, "GET", "/dead-letters", None).await;
    let failed = view["failed_runs"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 1, "{view}");
    assert_eq!(failed[0]["function_id"], "process-payout");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("COMMERCE_TENANTS")
    );
    let (_, other) = call(&rt, "GET", "/dead-letters?function=hello-world", None).await;
    assert!(other["failed_runs"].as_array().unwrap().is_empty());
    // WHEN it is redriven (twice: the second finds nothing new)
    let (status, out) = call(&rt, "POST", "/dead-letters/redrive", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["replayed"][0]["replay_of"], failed[0]["id"]);
    let (_, again) = call(&rt, "POST", "/dead-letters/redrive", None).await;
    assert_eq!(
        again["replayed"][0]["id"], out["replayed"][0]["id"],
        "one replay"
    );
    rt.drain().await.unwrap();
    let (_, runs) = call(&rt, "GET", "/runs?function=process-payout", None).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2, "{runs}");
    let (_, after) = call(
        &rt,
        "POST",
        "/dead-letters/redrive?function=process-payout",
        None,
    )
    .await;
    assert_eq!(
        after["replayed"].as_array().unwrap().len(),
        1,
        "only the new failure"
    );
    rt.drain().await.unwrap();
    // THEN the original left the view; the latest replay, failing again, is there
    let (_, view) = call(&rt, "GET", "/dead-letters", None).await;
    let failed_now = view["failed_runs"].as_array().unwrap();
    assert_eq!(failed_now.len(), 1);
    assert_ne!(failed_now[0]["id"], failed[0]["id"]);
}

#[tokio::test]
async fn events_answer_with_their_run_ids_and_a_run_can_be_awaited() {
    // GIVEN hookflow dev with its workers running
    let (rt, _) = runtime();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn({
        let rt = rt.clone();
        async move { rt.run_workers(stopped).await }
    });
    // WHEN an event is posted
    let body =
        json!({"name": "demo/hello", "id": "e-wait", "data": {"name": "Ada", "delay_secs": 0}});
    let (status, out) = call(&rt, "POST", "/events", Some(body.to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // THEN the answer names the run it starts, and a wait returns it finished
    let run_id = out["run_ids"][0].as_str().unwrap().to_owned();
    assert_eq!(out["events"][0]["runs"][0]["function_id"], "hello-world");
    assert_eq!(out["events"][0]["runs"][0]["run_id"], run_id.as_str());
    let (status, view) = call(&rt, "GET", &format!("/runs/{run_id}?wait=30s"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["output"], json!({"delivered": "Hello, Ada!"}));
    // and a duplicate delivery names the same run
    let (_, again) = call(&rt, "POST", "/events", Some(body.to_string())).await;
    assert_eq!(again["events"][0]["duplicate"], true);
    assert_eq!(again["run_ids"][0], run_id.as_str());
    // a wait on an unknown run ends with 404 once its time is up
    let (status, _) = call(&rt, "GET", "/runs/nope?wait=50ms", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&rt, "GET", &format!("/runs/{run_id}?wait=soon"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    stop.send(true).unwrap();
    workers.await.unwrap();
}

#[tokio::test]
async fn a_function_is_paused_and_resumed_over_http() {
    let (rt, _) = runtime();
    // GIVEN hello-world paused
    let (status, out) = call(&rt, "POST", "/functions/hello-world/pause", None).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (_, list) = call(&rt, "GET", "/functions", None).await;
    let hello = list["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "hello-world")
        .unwrap();
    assert_eq!(hello["paused_since"], out["paused_since"]);
    // WHEN an event for it arrives THEN no run starts
    let body = json!({"name": "demo/hello", "data": {}}).to_string();
    call(&rt, "POST", "/events", Some(body)).await;
    rt.drain().await.unwrap();
    let (_, runs) = call(&rt, "GET", "/runs?function=hello-world", None).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 0, "{runs}");
    // AND resuming starts it
    let (status, out) = call(&rt, "POST", "/functions/hello-world/resume", None).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["held_events_routed"], 1);
    rt.drain().await.unwrap();
    let (_, runs) = call(&rt, "GET", "/runs?function=hello-world", None).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
    assert!(runs["runs"][0]["started_at"].is_i64(), "{runs}");
    // AND an unknown function is a 404
    let (status, _) = call(&rt, "POST", "/functions/nope/pause", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The course demo catalog loads through `POST /docs`, and each document can
/// be read, listed, and set by hand; bad names are refused before any write.
#[tokio::test]
async fn documents_are_loaded_read_and_set_over_http() {
    let (rt, _) = runtime();
    let demo = include_str!("../../functions/course/demo.json");
    let (status, out) = call(&rt, "POST", "/docs", Some(demo.to_owned())).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let entries: Vec<Value> = serde_json::from_str(demo).unwrap();
    assert_eq!(out["written"].as_array().unwrap().len(), entries.len());
    let (status, product) = call(&rt, "GET", "/docs/products/prod_cohort_4", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(product["value"]["type"], "cohort");
    assert_eq!(product["version"], 1);
    // Loading again replaces (version 2), it does not fail.
    let (status, _) = call(&rt, "POST", "/docs", Some(demo.to_owned())).await;
    assert_eq!(status, StatusCode::OK);
    let (_, product) = call(&rt, "GET", "/docs/products/prod_cohort_4", None).await;
    assert_eq!(product["version"], 2);
    // Set by hand, listed in key order with a cursor.
    let (status, out) = call(
        &rt,
        "PUT",
        "/docs/users/u_zed",
        Some(json!({"id": "u_zed"}).to_string()),
    )
    .await;
    assert_eq!((status, out["version"].clone()), (StatusCode::OK, json!(1)));
    let (_, page) = call(&rt, "GET", "/docs/users?limit=2", None).await;
    let keys: Vec<&str> = page["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["u_ada", "u_bob"]);
    assert_eq!(page["next_after"], "u_bob");
    let (_, rest) = call(&rt, "GET", "/docs/users?after=u_bob", None).await;
    assert_eq!(rest["documents"].as_array().unwrap().len(), 2, "{rest}");
    assert_eq!(rest["next_after"], Value::Null);
    // Unknown: 404; a bad collection name rejects the whole batch.
    let (status, _) = call(&rt, "GET", "/docs/users/u_nobody", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let bad = json!([{"collection": "ok", "key": "a", "value": 1}, {"collection": "bad#name", "key": "b", "value": 2}]);
    let (status, out) = call(&rt, "POST", "/docs", Some(bad.to_string())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    let (status, _) = call(&rt, "GET", "/docs/ok/a", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing written");
}
