//! `POST /webhooks/{provider}` on `hookflow dev`, driven with every signed
//! sample in `events/`: genuine deliveries are stored and acknowledged,
//! tampered ones are refused with nothing stored.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hookflow::store::EventLog;
use hookflow::{FakeClock, Registry};
use hookflow_embedded::{Embedded, SqliteStore, WorkerConfig};
use hookflow_webhooks::{ApiGatewayV2Request, Provider, Receiver, WebhookConfig, test_secrets};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn samples() -> Vec<(String, ApiGatewayV2Request)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("events/")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("webhook-")
        })
        .map(|p| {
            let json = std::fs::read(&p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                ApiGatewayV2Request::from_json(&json).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn runtime(at: i64) -> Embedded {
    let registry = Registry::new(hookflow_registry::functions()).unwrap();
    let clock = FakeClock::new(at);
    Embedded::new(
        SqliteStore::in_memory().unwrap(),
        registry,
        Arc::new(clock),
        WorkerConfig::default(),
    )
}

async fn deliver<F: hookflow_webhooks::CertFetcher + 'static>(
    rt: &Embedded,
    receiver: Arc<Receiver<F>>,
    sample: &ApiGatewayV2Request,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method("POST")
        .uri(sample.path().unwrap_or_default());
    for (name, value) in &sample.headers {
        request = request.header(name, value);
    }
    let response = hookflow_cli::api::router(rt.clone(), receiver)
        .oneshot(request.body(Body::from(body)).unwrap())
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
async fn every_sample_is_accepted_and_stored_once() {
    let samples = samples();
    assert!(
        samples.len() >= 14,
        "expected the provider samples in events/"
    );
    for (name, sample) in &samples {
        let rt = runtime(sample.time_epoch_ms().unwrap());
        let receiver = Arc::new(test_secrets::receiver().unwrap());
        let body = sample.body_bytes().unwrap();
        let (status, reply) = deliver(&rt, receiver.clone(), sample, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{name}: {reply}");
        if name.contains("discord-ping") {
            assert_eq!(reply, serde_json::json!({"type": 1}));
            continue;
        }
        let ids: Vec<String> = match reply["events"].as_array() {
            Some(ids) => ids.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
            None => Vec::new(),
        };
        if !name.contains("discord") {
            assert!(!ids.is_empty(), "{name}: {reply}");
        }
        for id in &ids {
            assert!(
                rt.store().get_event(id).await.unwrap().is_some(),
                "{name}: {id} stored"
            );
        }
        // A redelivery is acknowledged and stored once.
        let (status, _) = deliver(&rt, receiver, sample, body).await;
        assert_eq!(status, StatusCode::OK, "{name} redelivered");
    }
}

#[tokio::test]
async fn a_tampered_delivery_is_refused_with_nothing_stored() {
    for (name, mut sample) in samples() {
        let rt = runtime(sample.time_epoch_ms().unwrap());
        let receiver = Arc::new(test_secrets::receiver().unwrap());
        let mut body = sample.body_bytes().unwrap();
        if name.contains("postmark") {
            // Postmark signs nothing: its credentials are what is checked.
            let auth = sample.headers.get_mut("authorization").expect("basic auth");
            auth.push('x');
            let (status, _) = deliver(&rt, receiver, &sample, body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
            continue;
        }
        let i = body
            .iter()
            .position(|b| b.is_ascii_digit())
            .expect("a digit to change");
        body[i] = if body[i] == b'9' { b'8' } else { body[i] + 1 };
        let (status, _) = deliver(&rt, receiver, &sample, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            rt.store().depth().await.unwrap().len(),
            0,
            "{name}: nothing queued"
        );
    }
}

#[tokio::test]
async fn unknown_and_unconfigured_providers_say_so() {
    let (_, sample) = samples()
        .into_iter()
        .find(|(n, _)| n.contains("stripe"))
        .unwrap();
    let rt = runtime(sample.time_epoch_ms().unwrap());
    let empty = Arc::new(Receiver::new(WebhookConfig::default()).unwrap());
    let (status, body) = deliver(&rt, empty, &sample, sample.body_bytes().unwrap()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(rt.store().depth().await.unwrap().len(), 0);
    assert_eq!(Provider::from_path("stripe").unwrap(), Provider::Stripe);
    let receiver = Arc::new(test_secrets::receiver().unwrap());
    let response = hookflow_cli::api::router(rt.clone(), receiver)
        .oneshot(Request::post("/webhooks/nope").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
