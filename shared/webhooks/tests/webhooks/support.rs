//! Test helpers: load a sample from `events/`, alter it (tamper, drop or
//! truncate a header, re-sign a new body), run it through a receiver with a
//! recording sink, and the assertions every provider's suite shares.

use std::path::PathBuf;

use hookflow::Event;
use hookflow_webhooks::test_secrets as secrets;
use hookflow_webhooks::{
    ApiGatewayV2Request, CalConfig, CertFetcher, DiscordConfig, PaypalConfig, PostmarkConfig,
    PrintifyConfig, Provider, Receiver, RecordingSink, ShopifyConfig, StaticCertFetcher,
    StripeConfig, WebhookRequest, WebhookResponse, cal, clerk, printify, shopify, stripe,
};

use crate::samples;

/// A sample loaded from `events/`.
pub struct Loaded {
    pub provider: Provider,
    pub request: WebhookRequest,
    /// The sample's signing time (`requestContext.timeEpoch`).
    pub now_ms: i64,
}

/// The repository's `events/` directory.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// Loads `events/<file_name>` through the API Gateway v2 adapter.
pub fn load(file_name: &str) -> Loaded {
    let path = events_dir().join(file_name);
    let json = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let parsed = ApiGatewayV2Request::from_json(&json).unwrap();
    Loaded {
        provider: parsed.provider().unwrap(),
        now_ms: parsed
            .time_epoch_ms()
            .expect("samples carry requestContext.timeEpoch"),
        request: parsed.into_webhook_request().unwrap(),
    }
}

/// A receiver with every provider configured with the test secrets.
pub fn receiver() -> Receiver<StaticCertFetcher> {
    secrets::receiver().unwrap()
}

/// A receiver whose `provider` has a different secret (or key, or webhook id).
pub fn receiver_with_wrong_secret(provider: Provider) -> Receiver<StaticCertFetcher> {
    let mut config = secrets::config().unwrap();
    match provider {
        Provider::Stripe => {
            config.stripe = Some(StripeConfig::new("whsec_some_other_secret").unwrap())
        }
        Provider::Clerk => {
            config.clerk = Some(hookflow_webhooks::ClerkConfig::new("whsec_b3RoZXIta2V5").unwrap());
        }
        Provider::Paypal => {
            config.paypal = Some(PaypalConfig::new("WH-SOME-OTHER-WEBHOOK").unwrap())
        }
        Provider::Cal => config.cal = Some(CalConfig::new("other").unwrap()),
        Provider::Shopify => config.shopify = Some(ShopifyConfig::new("other").unwrap()),
        Provider::Postmark => {
            config.postmark =
                Some(PostmarkConfig::new(secrets::POSTMARK_WEBHOOK_USERNAME, "other").unwrap());
        }
        Provider::Printify => config.printify = Some(PrintifyConfig::new("other").unwrap()),
        Provider::Discord => {
            let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
            config.discord = Some(DiscordConfig::new(&hex::encode(other.as_bytes())).unwrap());
        }
    }
    Receiver::with_paypal_certs(config, secrets::paypal_certs())
}

/// Runs a delivery through `receiver` into a fresh recording sink.
pub async fn deliver<F: CertFetcher>(
    receiver: &Receiver<F>,
    provider: Provider,
    request: &WebhookRequest,
    now_ms: i64,
) -> (WebhookResponse, RecordingSink) {
    let sink = RecordingSink::new();
    let response = receiver.handle(provider, request, &sink, now_ms).await;
    (response, sink)
}

/// The request with header `name` set to `value` (replacing any case variant).
pub fn with_header(request: &WebhookRequest, name: &str, value: &str) -> WebhookRequest {
    let mut changed = without_header(request, name);
    changed.headers.push((name.to_owned(), value.to_owned()));
    changed
}

/// The request without header `name`.
pub fn without_header(request: &WebhookRequest, name: &str) -> WebhookRequest {
    let mut changed = request.clone();
    changed
        .headers
        .retain(|(key, _)| !key.eq_ignore_ascii_case(name));
    changed
}

/// The request with one body byte changed (still valid JSON where possible).
pub fn tampered(request: &WebhookRequest) -> WebhookRequest {
    let mut changed = request.clone();
    let text = String::from_utf8(changed.body.clone()).unwrap();
    let replaced = text.replacen("ada@example.com", "eve@example.com", 1);
    changed.body = if replaced == text {
        text.replacen('1', "2", 1)
    } else {
        replaced
    }
    .into_bytes();
    assert_ne!(changed.body, request.body, "tampering changed nothing");
    changed
}

/// The request with `body`, re-signed with the test secrets (same timestamp
/// and ids), so only the body's content decides the outcome.
pub fn resigned(provider: Provider, request: &WebhookRequest, body: &[u8]) -> WebhookRequest {
    let mut changed = request.clone();
    changed.body = body.to_vec();
    let header = |name: &str| request.header(name).unwrap().to_owned();
    match provider {
        Provider::Stripe => {
            let t = stripe::parse_signature_header(&header("stripe-signature"))
                .unwrap()
                .timestamp_text
                .to_owned();
            let v1 = stripe::signature(secrets::STRIPE_WEBHOOK_SECRET.as_bytes(), &t, body);
            with_header(&changed, "stripe-signature", &format!("t={t},v1={v1}"))
        }
        Provider::Clerk => {
            let sig = clerk::signature(
                &samples::clerk_key(),
                &header("svix-id"),
                &header("svix-timestamp"),
                body,
            );
            with_header(&changed, "svix-signature", &sig)
        }
        Provider::Paypal => {
            let sig = samples::paypal_signature(
                &header("paypal-transmission-id"),
                &header("paypal-transmission-time"),
                secrets::PAYPAL_WEBHOOK_ID,
                body,
            );
            with_header(&changed, "paypal-transmission-sig", &sig)
        }
        Provider::Cal => with_header(
            &changed,
            "x-cal-signature-256",
            &cal::signature(secrets::CAL_WEBHOOK_SECRET.as_bytes(), body),
        ),
        Provider::Shopify => with_header(
            &changed,
            "x-shopify-hmac-sha256",
            &shopify::signature(secrets::SHOPIFY_WEBHOOK_SECRET.as_bytes(), body),
        ),
        Provider::Postmark => changed,
        Provider::Printify => with_header(
            &changed,
            "x-pfy-signature",
            &printify::signature(secrets::PRINTIFY_WEBHOOK_SECRET.as_bytes(), body),
        ),
        Provider::Discord => {
            let sig = samples::discord_signature(&header("x-signature-timestamp"), body);
            with_header(&changed, "x-signature-ed25519", &sig)
        }
    }
}

/// GIVEN a genuine sample WHEN delivered THEN 200 and exactly its events reach
/// the sink, with the body as `data`. Returns those events.
pub async fn assert_accepted(file_name: &str) -> Vec<Event> {
    let sample = load(file_name);
    let (response, sink) =
        deliver(&receiver(), sample.provider, &sample.request, sample.now_ms).await;
    assert_eq!(response.status, 200, "{file_name}: {}", response.body);
    let events = sink.events();
    let body: serde_json::Value = serde_json::from_slice(&sample.request.body).unwrap();
    for event in &events {
        assert_eq!(
            event.data, body,
            "{file_name}: data is the payload verbatim"
        );
        assert_eq!(event.ts, sample.now_ms);
        event.validate().unwrap();
    }
    events
}

/// Asserts `request` is answered `status` and nothing reaches the sink.
pub async fn assert_rejected_with<F: CertFetcher>(
    receiver: &Receiver<F>,
    provider: Provider,
    request: &WebhookRequest,
    now_ms: i64,
    status: u16,
) -> WebhookResponse {
    let (response, sink) = deliver(receiver, provider, request, now_ms).await;
    assert_eq!(response.status, status, "{provider}: {}", response.body);
    assert!(
        sink.batches().is_empty(),
        "{provider}: a rejected delivery reached the sink"
    );
    response
}

/// GIVEN a genuine sample WHEN one body byte changes THEN 401.
pub async fn assert_tampered_rejected(file_name: &str) {
    let sample = load(file_name);
    let request = tampered(&sample.request);
    assert_rejected_with(&receiver(), sample.provider, &request, sample.now_ms, 401).await;
}

/// GIVEN a genuine sample WHEN the receiver has another secret THEN 401.
pub async fn assert_wrong_secret_rejected(file_name: &str) {
    let sample = load(file_name);
    let receiver = receiver_with_wrong_secret(sample.provider);
    assert_rejected_with(
        &receiver,
        sample.provider,
        &sample.request,
        sample.now_ms,
        401,
    )
    .await;
}

/// GIVEN a genuine sample WHEN `header` is missing or empty THEN 401.
pub async fn assert_missing_header_rejected(file_name: &str, header: &str) {
    let sample = load(file_name);
    for request in [
        without_header(&sample.request, header),
        with_header(&sample.request, header, ""),
    ] {
        assert_rejected_with(&receiver(), sample.provider, &request, sample.now_ms, 401).await;
    }
}

/// GIVEN a genuine sample WHEN `header` loses characters at its end THEN 401.
pub async fn assert_truncated_rejected(file_name: &str, header: &str) {
    let sample = load(file_name);
    let value = sample.request.header(header).unwrap().to_owned();
    for cut in [1, 2, 4, value.len() / 2] {
        let request = with_header(&sample.request, header, &value[..value.len() - cut]);
        assert_rejected_with(&receiver(), sample.provider, &request, sample.now_ms, 401).await;
    }
}

/// GIVEN a genuine sample WHEN delivered twice THEN both are 200 and the sink
/// sees the same event id both times (deduplication is the sink's job).
pub async fn assert_duplicate_has_same_id(file_name: &str) {
    let sample = load(file_name);
    let receiver = receiver();
    let sink = RecordingSink::new();
    for _ in 0..2 {
        let response = receiver
            .handle(sample.provider, &sample.request, &sink, sample.now_ms)
            .await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
    let batches = sink.batches();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].len(), 1);
    assert_eq!(batches[0][0].id, batches[1][0].id);
    assert!(!batches[0][0].id.is_empty());
}

/// GIVEN a genuine sample WHEN the body is garbage THEN 401 unsigned and 400
/// once correctly signed (verification comes before parsing).
pub async fn assert_garbage_is_401_unsigned_400_signed(file_name: &str) {
    let sample = load(file_name);
    let mut garbage = sample.request.clone();
    garbage.body = b"not json at all".to_vec();
    if sample.provider != Provider::Postmark {
        assert_rejected_with(&receiver(), sample.provider, &garbage, sample.now_ms, 401).await;
    }
    let signed = resigned(sample.provider, &sample.request, b"not json at all");
    assert_rejected_with(&receiver(), sample.provider, &signed, sample.now_ms, 400).await;
}

/// GIVEN a genuine sample WHEN the signed body lacks `field` THEN 400.
pub async fn assert_missing_field_is_400(file_name: &str, field: &str) {
    let sample = load(file_name);
    let mut body: serde_json::Value = serde_json::from_slice(&sample.request.body).unwrap();
    body.as_object_mut()
        .unwrap()
        .remove(field)
        .expect("field present in the sample");
    let signed = resigned(
        sample.provider,
        &sample.request,
        body.to_string().as_bytes(),
    );
    let response =
        assert_rejected_with(&receiver(), sample.provider, &signed, sample.now_ms, 400).await;
    assert!(response.body_string().contains(field), "{}", response.body);
}

/// GIVEN a genuine sample WHEN "now" is `offset_secs` away THEN `status`.
pub async fn assert_status_at_offset(file_name: &str, offset_secs: i64, status: u16) {
    let sample = load(file_name);
    let now_ms = sample.now_ms + offset_secs * 1000;
    let (response, sink) = deliver(&receiver(), sample.provider, &sample.request, now_ms).await;
    assert_eq!(
        response.status, status,
        "offset {offset_secs}s: {}",
        response.body
    );
    assert_eq!(sink.batches().is_empty(), status != 200);
}

/// The shared suite for one provider's sample and its signature header.
macro_rules! provider_suite {
    (signed_body: $file:expr, $signature_header:expr) => {
        #[tokio::test]
        async fn tampered_body_is_rejected() {
            crate::support::assert_tampered_rejected($file).await;
        }

        crate::support::provider_suite!($file, $signature_header);
    };
    ($file:expr, $signature_header:expr) => {
        #[tokio::test]
        async fn wrong_secret_is_rejected() {
            crate::support::assert_wrong_secret_rejected($file).await;
        }

        #[tokio::test]
        async fn missing_signature_header_is_rejected() {
            crate::support::assert_missing_header_rejected($file, $signature_header).await;
        }

        #[tokio::test]
        async fn truncated_signature_is_rejected() {
            crate::support::assert_truncated_rejected($file, $signature_header).await;
        }

        #[tokio::test]
        async fn duplicate_delivery_reaches_the_sink_with_the_same_id() {
            crate::support::assert_duplicate_has_same_id($file).await;
        }

        #[tokio::test]
        async fn garbage_body_is_401_unless_signed_then_400() {
            crate::support::assert_garbage_is_401_unsigned_400_signed($file).await;
        }
    };
}
pub(crate) use provider_suite;

/// The timestamp-window suite for providers that sign a timestamp.
macro_rules! timestamp_suite {
    ($file:expr, $tolerance_secs:expr) => {
        #[tokio::test]
        async fn timestamp_just_inside_the_window_is_accepted() {
            crate::support::assert_status_at_offset($file, $tolerance_secs - 1, 200).await;
            crate::support::assert_status_at_offset($file, -($tolerance_secs - 1), 200).await;
        }

        #[tokio::test]
        async fn stale_timestamp_is_rejected() {
            crate::support::assert_status_at_offset($file, $tolerance_secs + 1, 401).await;
        }

        #[tokio::test]
        async fn future_timestamp_is_rejected() {
            crate::support::assert_status_at_offset($file, -($tolerance_secs + 1), 401).await;
        }
    };
}
pub(crate) use timestamp_suite;
