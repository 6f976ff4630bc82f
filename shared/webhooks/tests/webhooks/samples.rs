//! The sample deliveries in `events/`: API Gateway HTTP API (payload 2.0)
//! requests signed with the TEST secrets of `hookflow_webhooks::test_secrets`.
//!
//! Shared by the `gen-samples` example (which writes them) and the tests
//! (which check the files are exactly what this code generates, then verify
//! each one). Everything is deterministic: fixed times, fixed keys, and
//! signatures that are deterministic functions of them (HMAC, Ed25519,
//! RSA PKCS#1 v1.5). Bodies are literal text because the text is what is
//! signed.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use hookflow_webhooks::test_secrets as secrets;
use hookflow_webhooks::{Provider, cal, clerk, paypal, postmark, printify, shopify, stripe};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::SignatureEncoding;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::EncodePem;
use x509_cert::der::asn1::UtcTime;
use x509_cert::der::pem::LineEnding;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

/// The fixed RSA test key (PKCS#8 PEM) behind the PayPal test certificate.
pub const PAYPAL_TEST_KEY_PEM: &str = include_str!("../../testdata/paypal-test-key.pem");
/// When the first sample was signed: 2025-06-02T10:15:30Z.
pub const BASE_SECS: i64 = 1_748_859_330;

/// One sample request file.
pub struct Sample {
    /// File name in `events/`.
    pub file_name: &'static str,
    /// The provider it is for.
    pub provider: Provider,
    /// When it was signed (also `requestContext.timeEpoch`), ms.
    pub time_ms: i64,
    /// The event name it normalizes to (`None`: no event, a Discord PING).
    pub event_name: Option<&'static str>,
    /// The API Gateway v2 request event.
    pub event: Value,
}

/// Every sample, in file-name order.
pub fn all() -> Vec<Sample> {
    let mut samples = vec![
        stripe_sample(
            "webhook-stripe-checkout-session-completed.json",
            "checkout.session.completed",
            0,
            STRIPE_CHECKOUT,
        ),
        stripe_sample(
            "webhook-stripe-charge-refunded.json",
            "charge.refunded",
            1,
            STRIPE_REFUND,
        ),
        clerk_sample(),
        shopify_sample(),
        paypal_sample(),
        cal_sample(
            "webhook-cal-booking-created.json",
            "cal/BOOKING_CREATED",
            5,
            CAL_BOOKING_CREATED,
        ),
        cal_sample(
            "webhook-cal-booking-cancelled.json",
            "cal/BOOKING_CANCELLED",
            6,
            CAL_BOOKING_CANCELLED,
        ),
        cal_sample(
            "webhook-cal-meeting-started.json",
            "cal/MEETING_STARTED",
            7,
            CAL_MEETING_STARTED,
        ),
        cal_sample(
            "webhook-cal-meeting-ended.json",
            "cal/MEETING_ENDED",
            8,
            CAL_MEETING_ENDED,
        ),
        postmark_sample(
            "webhook-postmark-bounce.json",
            "postmark/Bounce",
            9,
            POSTMARK_BOUNCE,
        ),
        postmark_sample(
            "webhook-postmark-delivery.json",
            "postmark/Delivery",
            10,
            POSTMARK_DELIVERY,
        ),
        printify_sample(),
        discord_sample("webhook-discord-ping.json", None, 12, DISCORD_PING),
        discord_sample(
            "webhook-discord-application-command.json",
            Some("discord/interaction.application_command"),
            13,
            DISCORD_COMMAND,
        ),
        cal_sample(
            "webhook-cal-booking-created-pack.json",
            "cal/BOOKING_CREATED",
            14,
            CAL_PACK_BOOKING_CREATED,
        ),
        cal_sample(
            "webhook-cal-meeting-ended-pack.json",
            "cal/MEETING_ENDED",
            15,
            CAL_PACK_MEETING_ENDED,
        ),
        stripe_sample(
            "webhook-stripe-checkout-session-completed-course.json",
            "checkout.session.completed",
            16,
            STRIPE_COURSE_CHECKOUT,
        ),
        stripe_sample(
            "webhook-stripe-charge-refunded-course.json",
            "charge.refunded",
            17,
            STRIPE_COURSE_REFUND,
        ),
        stripe_sample(
            "webhook-stripe-payment-intent-succeeded.json",
            "payment_intent.succeeded",
            18,
            STRIPE_MERCH_PAID,
        ),
        stripe_sample(
            "webhook-stripe-payment-intent-failed.json",
            "payment_intent.payment_failed",
            19,
            STRIPE_MERCH_FAILED,
        ),
        clerk_sample_of(
            "webhook-clerk-user-updated.json",
            "clerk/user.updated",
            20,
            CLERK_USER_UPDATED,
            "msg_2hookflowClerkUserUpdated01",
        ),
        clerk_sample_of(
            "webhook-clerk-user-deleted.json",
            "clerk/user.deleted",
            21,
            CLERK_USER_DELETED,
            "msg_2hookflowClerkUserDeleted01",
        ),
        printify_sample_of(
            "webhook-printify-product-publish-started.json",
            "printify/product:publish:started",
            22,
            PRINTIFY_PUBLISH_STARTED,
        ),
        printify_sample_of(
            "webhook-printify-product-deleted.json",
            "printify/product:deleted",
            23,
            PRINTIFY_PRODUCT_DELETED,
        ),
        shopify_sample_of(
            "webhook-shopify-orders-updated.json",
            ("orders/updated", "shopify/orders/updated"),
            24,
            ("hookflow-test.myshopify.com", "820982911946154508"),
            (
                "5f0c3a71-2a4e-4b8f-9d36-7c1e0b9a4d21",
                "b54557e4-bdd9-4b37-8a5f-4c6a2e0d9f11",
            ),
            SHOPIFY_ORDER_DELIVERED,
        ),
        shopify_sample_of(
            "webhook-shopify-orders-create-south.json",
            ("orders/create", "shopify/orders/create"),
            25,
            ("hookflow-south.myshopify.com", "450789469"),
            (
                "0b6e9d4c-8f27-4c1a-a5e3-2d9f6b7c8e10",
                "7d1f3b25-6e0a-4c9b-b2d8-5a4e3f2c1b01",
            ),
            SHOPIFY_SOUTH_ORDER_CREATED,
        ),
        shopify_sample_of(
            "webhook-shopify-orders-updated-south.json",
            ("orders/updated", "shopify/orders/updated"),
            26,
            ("hookflow-south.myshopify.com", "450789469"),
            (
                "c3d1e7f2-5b9a-4e6c-8a0d-1f2e3d4c5b6a",
                "7d1f3b25-6e0a-4c9b-b2d8-5a4e3f2c1b02",
            ),
            SHOPIFY_SOUTH_ORDER_DELIVERED,
        ),
    ];
    samples.sort_by_key(|sample| sample.file_name);
    samples
}

/// A sample as file text (pretty JSON, trailing newline).
pub fn render(sample: &Sample) -> String {
    let mut text = serde_json::to_string_pretty(&sample.event).expect("samples serialize");
    text.push('\n');
    text
}

/// The self-signed PayPal test certificate for [`PAYPAL_TEST_KEY_PEM`] (PEM),
/// valid 2024-01-01 to 2049-12-31; deterministic.
pub fn paypal_test_cert_pem() -> String {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(PAYPAL_TEST_KEY_PEM).expect("test key parses");
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
    let utc = |secs| {
        Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(secs)).expect("utc time"))
    };
    let validity = Validity {
        not_before: utc(1_704_067_200),
        not_after: utc(2_524_521_599),
    };
    let subject =
        Name::from_str("CN=messageverificationcerts.sandbox.paypal.com,O=Hookflow Test,C=US")
            .expect("name");
    let spki = SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).expect("spki");
    let builder = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::from(42u32),
        validity,
        subject,
        spki,
        &signer,
    )
    .expect("builder");
    let cert = builder
        .build::<rsa::pkcs1v15::Signature>()
        .expect("certificate");
    cert.to_pem(LineEnding::LF).expect("pem")
}

/// PayPal's transmission signature (base64) over a delivery, with the test key.
pub fn paypal_signature(
    transmission_id: &str,
    transmission_time: &str,
    webhook_id: &str,
    body: &[u8],
) -> String {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(PAYPAL_TEST_KEY_PEM).expect("test key parses");
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key);
    let message = paypal::signed_message(transmission_id, transmission_time, webhook_id, body);
    STANDARD.encode(signer.sign(message.as_bytes()).to_bytes())
}

/// Discord's Ed25519 signature (hex) over `timestamp + body`, with the test key.
pub fn discord_signature(timestamp: &str, body: &[u8]) -> String {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(secrets::DISCORD_SECRET_KEY, &mut seed).expect("seed hex");
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(body);
    hex::encode(key.sign(&message).to_bytes())
}

/// The decoded Clerk test key.
pub fn clerk_key() -> Vec<u8> {
    let encoded = secrets::CLERK_WEBHOOK_SECRET.trim_start_matches("whsec_");
    STANDARD
        .decode(encoded)
        .expect("clerk test secret is base64")
}

/// ISO-8601 UTC time with `fmt` for `secs`.
fn time(secs: i64, fmt: &str) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("valid time")
        .format(fmt)
        .to_string()
}

/// Fills `@SECS@`, `@MS@`, `@ISO@` (seconds) and `@ISO_MS@` (millis) in a body template.
fn fill(template: &str, secs: i64) -> String {
    template
        .replace("@SECS@", &secs.to_string())
        .replace("@MS@", &(secs * 1000).to_string())
        .replace("@ISO_MS@", &time(secs, "%Y-%m-%dT%H:%M:%S.000Z"))
        .replace("@ISO@", &time(secs, "%Y-%m-%dT%H:%M:%SZ"))
}

/// An API Gateway HTTP API (payload 2.0) request event for a signed delivery.
fn request_event(
    file_name: &'static str,
    provider: Provider,
    secs: i64,
    event_name: Option<&'static str>,
    headers: &[(&str, String)],
    body: &str,
) -> Sample {
    let path = provider.path();
    let user_agent = headers
        .iter()
        .find(|(name, _)| *name == "user-agent")
        .map_or_else(|| "hookflow-sample".to_owned(), |(_, value)| value.clone());
    let mut all_headers = Map::new();
    for (name, value) in [
        ("content-length", body.len().to_string()),
        ("content-type", "application/json".to_owned()),
        (
            "host",
            "abc123defg.execute-api.us-east-1.amazonaws.com".to_owned(),
        ),
        (
            "x-amzn-trace-id",
            format!("Root=1-{secs:x}-0123456789abcdef01234567"),
        ),
        ("x-forwarded-for", "203.0.113.10".to_owned()),
        ("x-forwarded-port", "443".to_owned()),
        ("x-forwarded-proto", "https".to_owned()),
    ] {
        all_headers.insert(name.to_owned(), Value::String(value));
    }
    for (name, value) in headers {
        all_headers.insert(name.to_ascii_lowercase(), Value::String(value.clone()));
    }
    let time_ms = secs * 1000;
    let event = json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123defg",
            "domainName": "abc123defg.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123defg",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": user_agent,
            },
            "requestId": format!("{}-sample", provider.as_str()),
            "routeKey": format!("POST {path}"),
            "stage": "$default",
            "time": time(secs, "%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": time_ms,
        },
        "body": body,
        "isBase64Encoded": false,
    });
    Sample {
        file_name,
        provider,
        time_ms,
        event_name,
        event,
    }
}

/// Signing time of the sample at `index`: one minute apart.
fn at(index: i64) -> i64 {
    BASE_SECS + index * 60
}

fn stripe_sample(
    file_name: &'static str,
    kind: &'static str,
    index: i64,
    template: &str,
) -> Sample {
    let secs = at(index);
    let body = fill(template, secs);
    let t = secs.to_string();
    let v1 = stripe::signature(
        secrets::STRIPE_WEBHOOK_SECRET.as_bytes(),
        &t,
        body.as_bytes(),
    );
    let name: &'static str = match kind {
        "checkout.session.completed" => "stripe/checkout.session.completed",
        "payment_intent.succeeded" => "stripe/payment_intent.succeeded",
        "payment_intent.payment_failed" => "stripe/payment_intent.payment_failed",
        _ => "stripe/charge.refunded",
    };
    let headers = [
        ("stripe-signature", format!("t={t},v1={v1}")),
        (
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)".to_owned(),
        ),
    ];
    request_event(
        file_name,
        Provider::Stripe,
        secs,
        Some(name),
        &headers,
        &body,
    )
}

fn clerk_sample() -> Sample {
    clerk_sample_of(
        "webhook-clerk-user-created.json",
        "clerk/user.created",
        2,
        CLERK_USER_CREATED,
        "msg_2hookflowClerkUserCreated01",
    )
}

fn clerk_sample_of(
    file_name: &'static str,
    name: &'static str,
    index: i64,
    template: &str,
    msg_id: &str,
) -> Sample {
    let secs = at(index);
    let body = fill(template, secs);
    let signature = clerk::signature(&clerk_key(), msg_id, &secs.to_string(), body.as_bytes());
    let headers = [
        ("svix-id", msg_id.to_owned()),
        ("svix-timestamp", secs.to_string()),
        ("svix-signature", signature),
        ("user-agent", "Svix-Webhooks/1.63.1".to_owned()),
    ];
    request_event(
        file_name,
        Provider::Clerk,
        secs,
        Some(name),
        &headers,
        &body,
    )
}

fn shopify_sample() -> Sample {
    shopify_sample_of(
        "webhook-shopify-orders-create.json",
        ("orders/create", "shopify/orders/create"),
        3,
        ("hookflow-test.myshopify.com", "820982911946154508"),
        (
            "98880550-7158-44d4-b7cd-2c97c8a091b5",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        ),
        SHOPIFY_ORDER_CREATED,
    )
}

/// A Shopify order webhook: `(topic, event name)`, `(shop, order id)`,
/// `(event id, webhook id)`.
fn shopify_sample_of(
    file_name: &'static str,
    (topic, name): (&str, &'static str),
    index: i64,
    (shop, order_id): (&str, &str),
    (event_id, webhook_id): (&str, &str),
    template: &str,
) -> Sample {
    let secs = at(index);
    let body = fill(template, secs);
    let headers = [
        ("x-shopify-api-version", "2025-04".to_owned()),
        ("x-shopify-event-id", event_id.to_owned()),
        (
            "x-shopify-hmac-sha256",
            shopify::signature(secrets::SHOPIFY_WEBHOOK_SECRET.as_bytes(), body.as_bytes()),
        ),
        ("x-shopify-order-id", order_id.to_owned()),
        ("x-shopify-shop-domain", shop.to_owned()),
        ("x-shopify-topic", topic.to_owned()),
        (
            "x-shopify-triggered-at",
            time(secs, "%Y-%m-%dT%H:%M:%S.000000Z"),
        ),
        ("x-shopify-webhook-id", webhook_id.to_owned()),
        ("user-agent", "Shopify-Captain-Hook".to_owned()),
    ];
    request_event(
        file_name,
        Provider::Shopify,
        secs,
        Some(name),
        &headers,
        &body,
    )
}

fn paypal_sample() -> Sample {
    let secs = at(4);
    let body = fill(PAYPAL_CAPTURE_COMPLETED, secs);
    let transmission_id = "69cd13f0-3f9a-11f0-9a7e-0d1f4f6a2b3c";
    let transmission_time = time(secs, "%Y-%m-%dT%H:%M:%SZ");
    let signature = paypal_signature(
        transmission_id,
        &transmission_time,
        secrets::PAYPAL_WEBHOOK_ID,
        body.as_bytes(),
    );
    let headers = [
        ("paypal-auth-algo", paypal::AUTH_ALGO.to_owned()),
        ("paypal-auth-version", "v2".to_owned()),
        ("paypal-cert-url", secrets::PAYPAL_CERT_URL.to_owned()),
        ("paypal-transmission-id", transmission_id.to_owned()),
        ("paypal-transmission-sig", signature),
        ("paypal-transmission-time", transmission_time),
        ("correlation-id", "f0a1b2c3d4e5f".to_owned()),
        ("user-agent", "PayPal/AUHD-214.0-58012346".to_owned()),
    ];
    request_event(
        "webhook-paypal-payment-capture-completed.json",
        Provider::Paypal,
        secs,
        Some("paypal/PAYMENT.CAPTURE.COMPLETED"),
        &headers,
        &body,
    )
}

fn cal_sample(file_name: &'static str, name: &'static str, index: i64, template: &str) -> Sample {
    let secs = at(index);
    let body = fill(template, secs);
    let headers = [
        (
            "x-cal-signature-256",
            cal::signature(secrets::CAL_WEBHOOK_SECRET.as_bytes(), body.as_bytes()),
        ),
        ("user-agent", "node".to_owned()),
    ];
    request_event(file_name, Provider::Cal, secs, Some(name), &headers, &body)
}

fn postmark_sample(
    file_name: &'static str,
    name: &'static str,
    index: i64,
    template: &str,
) -> Sample {
    let secs = at(index);
    let body = fill(template, secs);
    let headers = [
        (
            "authorization",
            postmark::basic_auth(
                secrets::POSTMARK_WEBHOOK_USERNAME,
                secrets::POSTMARK_WEBHOOK_PASSWORD,
            ),
        ),
        ("user-agent", "Postmark".to_owned()),
    ];
    request_event(
        file_name,
        Provider::Postmark,
        secs,
        Some(name),
        &headers,
        &body,
    )
}

fn printify_sample() -> Sample {
    printify_sample_of(
        "webhook-printify-order-shipment-created.json",
        "printify/order:shipment:created",
        11,
        PRINTIFY_SHIPMENT_CREATED,
    )
}

fn printify_sample_of(
    file_name: &'static str,
    name: &'static str,
    index: i64,
    template: &str,
) -> Sample {
    let secs = at(index);
    let body = fill(template, secs);
    let headers = [
        (
            "x-pfy-signature",
            printify::signature(secrets::PRINTIFY_WEBHOOK_SECRET.as_bytes(), body.as_bytes()),
        ),
        ("user-agent", "Printify-Webhooks".to_owned()),
    ];
    request_event(
        file_name,
        Provider::Printify,
        secs,
        Some(name),
        &headers,
        &body,
    )
}

fn discord_sample(
    file_name: &'static str,
    name: Option<&'static str>,
    index: i64,
    template: &str,
) -> Sample {
    let secs = at(index);
    let body = fill(template, secs);
    let timestamp = secs.to_string();
    let headers = [
        (
            "x-signature-ed25519",
            discord_signature(&timestamp, body.as_bytes()),
        ),
        ("x-signature-timestamp", timestamp),
        (
            "user-agent",
            "Discord-Interactions/1.0 (+https://discord.com)".to_owned(),
        ),
    ];
    request_event(file_name, Provider::Discord, secs, name, &headers, &body)
}

const STRIPE_CHECKOUT: &str = r#"{
  "id": "evt_1RhookflowCheckout0001",
  "object": "event",
  "api_version": "2025-05-28.basil",
  "created": @SECS@,
  "data": {
    "object": {
      "id": "cs_test_a1hookflowCheckoutSession0001",
      "object": "checkout.session",
      "amount_subtotal": 15000,
      "amount_total": 15000,
      "client_reference_id": "user_2hookflowClerkId0001",
      "currency": "usd",
      "customer": "cus_ShookflowCust01",
      "customer_details": {
        "email": "ada@example.com",
        "name": "Ada Lovelace"
      },
      "customer_email": "ada@example.com",
      "livemode": false,
      "metadata": {
        "clerkId": "user_2hookflowClerkId0001",
        "customerEmail": "ada@example.com",
        "mentorId": "mentor_42",
        "packId": "pack_3_sessions",
        "slot": "2025-06-10T15:00:00Z"
      },
      "mode": "payment",
      "payment_intent": "pi_3RhookflowPayment0001",
      "payment_status": "paid",
      "status": "complete"
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": null,
    "idempotency_key": null
  },
  "type": "checkout.session.completed"
}"#;

/// The course platform's checkout: a cohort for one learner who used an
/// entitlement coupon (the storefront names product, user and coupons).
const STRIPE_COURSE_CHECKOUT: &str = r#"{
  "id": "evt_1RhookflowCourseCheckout01",
  "object": "event",
  "api_version": "2025-05-28.basil",
  "created": @SECS@,
  "data": {
    "object": {
      "id": "cs_test_a1hookflowCourseSession0001",
      "object": "checkout.session",
      "amount_subtotal": 49900,
      "amount_total": 49900,
      "client_reference_id": "u_ada",
      "currency": "usd",
      "customer": "cus_ShookflowCust02",
      "customer_details": {
        "email": "ada@example.com",
        "name": "Ada Lovelace"
      },
      "customer_email": "ada@example.com",
      "livemode": false,
      "metadata": {
        "productId": "prod_cohort_4",
        "quantity": "1",
        "usedCouponIds": "coupon_early_access",
        "userId": "u_ada"
      },
      "mode": "payment",
      "payment_intent": "pi_3RhookflowCoursePayment01",
      "payment_status": "paid",
      "status": "complete"
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": null,
    "idempotency_key": null
  },
  "type": "checkout.session.completed"
}"#;

/// The course platform's refund of a live event series.
const STRIPE_COURSE_REFUND: &str = r#"{
  "id": "evt_3RhookflowCourseRefund01",
  "object": "event",
  "api_version": "2025-05-28.basil",
  "created": @SECS@,
  "data": {
    "object": {
      "id": "ch_3RhookflowCourseCharge01",
      "object": "charge",
      "amount": 9900,
      "amount_captured": 9900,
      "amount_refunded": 9900,
      "billing_details": {
        "email": "grace@example.com",
        "name": "Grace Hopper"
      },
      "currency": "usd",
      "customer": "cus_ShookflowCust03",
      "livemode": false,
      "metadata": {
        "productId": "prod_live_series",
        "userId": "u_grace"
      },
      "paid": true,
      "payment_intent": "pi_3RhookflowCourseLive0001",
      "refunded": true,
      "status": "succeeded"
    },
    "previous_attributes": {
      "amount_refunded": 0,
      "refunded": false
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": "req_hookflowCourseRefund01",
    "idempotency_key": "hookflow-course-refund-0001"
  },
  "type": "charge.refunded"
}"#;

const STRIPE_REFUND: &str = r#"{
  "id": "evt_3RhookflowRefund0001",
  "object": "event",
  "api_version": "2025-05-28.basil",
  "created": @SECS@,
  "data": {
    "object": {
      "id": "ch_3RhookflowCharge0001",
      "object": "charge",
      "amount": 15000,
      "amount_captured": 15000,
      "amount_refunded": 15000,
      "billing_details": {
        "email": "ada@example.com",
        "name": "Ada Lovelace"
      },
      "currency": "usd",
      "customer": "cus_ShookflowCust01",
      "livemode": false,
      "metadata": {
        "clerkId": "user_2hookflowClerkId0001",
        "packId": "pack_3_sessions"
      },
      "paid": true,
      "payment_intent": "pi_3RhookflowPayment0001",
      "refunded": true,
      "status": "succeeded"
    },
    "previous_attributes": {
      "amount_refunded": 0,
      "refunded": false
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": "req_hookflowRefund01",
    "idempotency_key": "hookflow-refund-0001"
  },
  "type": "charge.refunded"
}"#;

const CLERK_USER_CREATED: &str = r#"{"data":{"created_at":@MS@,"email_addresses":[{"email_address":"ada@example.com","id":"idn_2hookflowEmail0001","linked_to":[],"object":"email_address","verification":{"status":"verified","strategy":"email_code"}}],"external_id":null,"first_name":"Ada","id":"user_2hookflowClerkId0001","image_url":"https://img.clerk.com/hookflow-test","last_name":"Lovelace","last_sign_in_at":null,"object":"user","primary_email_address_id":"idn_2hookflowEmail0001","private_metadata":{},"public_metadata":{},"unsafe_metadata":{},"updated_at":@MS@,"username":null},"event_attributes":{"http_request":{"client_ip":"203.0.113.7","user_agent":"Mozilla/5.0"}},"instance_id":"ins_2hookflowInstance01","object":"event","timestamp":@MS@,"type":"user.created"}"#;

const SHOPIFY_ORDER_CREATED: &str = r##"{"id":820982911946154508,"admin_graphql_api_id":"gid://shopify/Order/820982911946154508","contact_email":"ada@example.com","created_at":"@ISO@","currency":"USD","current_total_price":"150.00","email":"ada@example.com","financial_status":"paid","fulfillment_status":null,"name":"#1001","note_attributes":[{"name":"clerkId","value":"user_2hookflowClerkId0001"}],"order_number":1001,"processed_at":"@ISO@","subtotal_price":"150.00","test":true,"total_price":"150.00","customer":{"id":115310627314723954,"email":"ada@example.com","first_name":"Ada","last_name":"Lovelace"},"line_items":[{"id":866550311766439020,"name":"Mentoring pack - 3 sessions","price":"150.00","product_id":788032119674292922,"quantity":1,"sku":"pack_3_sessions","title":"Mentoring pack","variant_id":642667041472713922}]}"##;

const SHOPIFY_ORDER_DELIVERED: &str = r##"{"id":820982911946154508,"admin_graphql_api_id":"gid://shopify/Order/820982911946154508","contact_email":"ada@example.com","created_at":"2025-06-02T10:18:30Z","currency":"USD","current_total_price":"150.00","email":"ada@example.com","financial_status":"paid","fulfillment_status":"fulfilled","name":"#1001","order_number":1001,"updated_at":"@ISO@","total_price":"150.00","customer":{"id":115310627314723954,"email":"ada@example.com","first_name":"Ada","last_name":"Lovelace"},"fulfillments":[{"id":255858046,"status":"success","shipment_status":"delivered","tracking_company":"UPS","tracking_number":"1Z2345","updated_at":"@ISO@"}],"line_items":[{"id":866550311766439020,"name":"Mentoring pack - 3 sessions","price":"150.00","product_id":788032119674292922,"quantity":1,"sku":"pack_3_sessions","title":"Mentoring pack","variant_id":642667041472713922}]}"##;

const SHOPIFY_SOUTH_ORDER_CREATED: &str = r##"{"id":450789469,"admin_graphql_api_id":"gid://shopify/Order/450789469","contact_email":"grace@example.com","created_at":"@ISO@","currency":"EUR","current_total_price":"64.90","discount_codes":[{"code":"GRACE15","amount":"11.45","type":"percentage"}],"email":"grace@example.com","financial_status":"paid","fulfillment_status":null,"name":"#S1042","note_attributes":[{"name":"visitorId","value":"v_grace_01"}],"order_number":1042,"processed_at":"@ISO@","total_price":"64.90","customer":{"id":207119551,"email":"grace@example.com","first_name":"Grace","last_name":"Hopper"},"line_items":[{"id":518995019,"name":"Linen shirt - M","price":"76.35","product_id":632910392,"quantity":1,"sku":"SHIRT-LINEN-M","title":"Linen shirt","variant_id":808950810}]}"##;

const SHOPIFY_SOUTH_ORDER_DELIVERED: &str = r##"{"id":450789469,"admin_graphql_api_id":"gid://shopify/Order/450789469","contact_email":"grace@example.com","created_at":"2025-06-02T10:40:30Z","currency":"EUR","current_total_price":"64.90","email":"grace@example.com","financial_status":"paid","fulfillment_status":"fulfilled","name":"#S1042","order_number":1042,"updated_at":"@ISO@","total_price":"64.90","customer":{"id":207119551,"email":"grace@example.com","first_name":"Grace","last_name":"Hopper"},"fulfillments":[{"id":255858047,"status":"success","shipment_status":"delivered","tracking_company":"DHL","tracking_number":"JD0146","updated_at":"@ISO@"}],"line_items":[{"id":518995019,"name":"Linen shirt - M","price":"76.35","product_id":632910392,"quantity":1,"sku":"SHIRT-LINEN-M","title":"Linen shirt","variant_id":808950810}]}"##;

const PAYPAL_CAPTURE_COMPLETED: &str = r#"{"id":"WH-2HOOKFLOW0000000-00000000000000000","event_version":"1.0","create_time":"@ISO@","resource_type":"capture","resource_version":"2.0","event_type":"PAYMENT.CAPTURE.COMPLETED","summary":"Payment completed for $ 150.0 USD","resource":{"id":"2HK12345AB678901C","status":"COMPLETED","amount":{"currency_code":"USD","value":"150.00"},"final_capture":true,"custom_id":"{\"clerkId\":\"user_2hookflowClerkId0001\",\"packId\":\"pack_3_sessions\"}","invoice_id":"hookflow-inv-0001","seller_protection":{"status":"ELIGIBLE","dispute_categories":["ITEM_NOT_RECEIVED","UNAUTHORIZED_TRANSACTION"]},"seller_receivable_breakdown":{"gross_amount":{"currency_code":"USD","value":"150.00"},"paypal_fee":{"currency_code":"USD","value":"5.74"},"net_amount":{"currency_code":"USD","value":"144.26"}},"supplementary_data":{"related_ids":{"order_id":"5O190127TN364715T"}},"create_time":"@ISO@","update_time":"@ISO@","links":[{"href":"https://api.sandbox.paypal.com/v2/payments/captures/2HK12345AB678901C","rel":"self","method":"GET"},{"href":"https://api.sandbox.paypal.com/v2/payments/captures/2HK12345AB678901C/refund","rel":"refund","method":"POST"}]},"links":[{"href":"https://api.sandbox.paypal.com/v1/notifications/webhooks-events/WH-2HOOKFLOW0000000-00000000000000000","rel":"self","method":"GET"}]}"#;

const CAL_BOOKING_CREATED: &str = r#"{"triggerEvent":"BOOKING_CREATED","createdAt":"@ISO_MS@","payload":{"type":"mentoring-30","title":"Mentoring between Grace Hopper and Ada Lovelace","description":"","additionalNotes":"","customInputs":{},"startTime":"2025-06-10T15:00:00Z","endTime":"2025-06-10T15:30:00Z","organizer":{"id":7,"name":"Grace Hopper","email":"mentor@example.com","username":"mentor_42","timeZone":"Europe/London","language":{"locale":"en"}},"responses":{"name":{"label":"your_name","value":"Ada Lovelace"},"email":{"label":"email_address","value":"ada@example.com"}},"attendees":[{"email":"ada@example.com","name":"Ada Lovelace","timeZone":"Europe/London","language":{"locale":"en"}}],"location":"integrations:daily","eventTypeId":1234,"uid":"bk8hookflowUid0001","bookingId":5678,"length":30,"metadata":{"videoCallUrl":"https://app.cal.com/video/bk8hookflowUid0001"},"status":"ACCEPTED"}}"#;

const CAL_BOOKING_CANCELLED: &str = r#"{"triggerEvent":"BOOKING_CANCELLED","createdAt":"@ISO_MS@","payload":{"type":"mentoring-30","title":"Mentoring between Grace Hopper and Ada Lovelace","startTime":"2025-06-10T15:00:00Z","endTime":"2025-06-10T15:30:00Z","organizer":{"id":7,"name":"Grace Hopper","email":"mentor@example.com","timeZone":"Europe/London","language":{"locale":"en"}},"attendees":[{"email":"ada@example.com","name":"Ada Lovelace","timeZone":"Europe/London","language":{"locale":"en"}}],"eventTypeId":1234,"uid":"bk8hookflowUid0001","bookingId":5678,"cancellationReason":"Schedule conflict","status":"CANCELLED"}}"#;

const CAL_MEETING_STARTED: &str = r#"{"triggerEvent":"MEETING_STARTED","id":5678,"uid":"bk8hookflowUid0001","title":"Mentoring between Grace Hopper and Ada Lovelace","startTime":"2025-06-10T15:00:00Z","endTime":"2025-06-10T15:30:00Z","userId":7,"eventTypeId":1234,"status":"ACCEPTED","createdAt":"2025-06-02T10:20:30.000Z","user":{"email":"mentor@example.com","name":"Grace Hopper","timeZone":"Europe/London"},"attendees":[{"email":"ada@example.com","name":"Ada Lovelace","timeZone":"Europe/London"}],"references":[{"type":"daily_video","meetingUrl":"https://app.cal.com/video/bk8hookflowUid0001"}]}"#;

const CAL_MEETING_ENDED: &str = r#"{"triggerEvent":"MEETING_ENDED","id":5678,"uid":"bk8hookflowUid0001","title":"Mentoring between Grace Hopper and Ada Lovelace","startTime":"2025-06-10T15:00:00Z","endTime":"2025-06-10T15:30:00Z","userId":7,"eventTypeId":1234,"status":"ACCEPTED","createdAt":"2025-06-02T10:20:30.000Z","user":{"email":"mentor@example.com","name":"Grace Hopper","timeZone":"Europe/London"},"attendees":[{"email":"ada@example.com","name":"Ada Lovelace","timeZone":"Europe/London"}],"references":[{"type":"daily_video","meetingUrl":"https://app.cal.com/video/bk8hookflowUid0001"}]}"#;

/// A mentee's booking from the app's Cal.com embed: the metadata names the
/// session pack (the Stripe sample's order) and the member.
const CAL_PACK_BOOKING_CREATED: &str = r#"{"triggerEvent":"BOOKING_CREATED","createdAt":"@ISO_MS@","payload":{"type":"mentorship-45","title":"Mentorship session: Grace Hopper and Ada Lovelace","description":"","additionalNotes":"","customInputs":{},"startTime":"2025-06-12T16:00:00Z","endTime":"2025-06-12T16:45:00Z","organizer":{"id":7,"name":"Grace Hopper","email":"mentor@example.com","username":"mentor_42","timeZone":"Europe/London","language":{"locale":"en"}},"responses":{"name":{"label":"your_name","value":"Ada Lovelace"},"email":{"label":"email_address","value":"ada@example.com"}},"attendees":[{"email":"ada@example.com","name":"Ada Lovelace","timeZone":"Europe/London","language":{"locale":"en"}}],"location":"integrations:daily","eventTypeId":4321,"uid":"bk8hookflowPackUid0001","bookingId":6001,"length":45,"metadata":{"orderId":"cs_test_a1hookflowCheckoutSession0001","clerkId":"user_2hookflowClerkId0001","videoCallUrl":"https://app.cal.com/video/bk8hookflowPackUid0001"},"status":"ACCEPTED"}}"#;

/// The end of that session's meeting.
const CAL_PACK_MEETING_ENDED: &str = r#"{"triggerEvent":"MEETING_ENDED","id":6001,"uid":"bk8hookflowPackUid0001","title":"Mentorship session: Grace Hopper and Ada Lovelace","startTime":"2025-06-12T16:00:00Z","endTime":"2025-06-12T16:45:00Z","userId":7,"eventTypeId":4321,"status":"ACCEPTED","createdAt":"2025-06-02T10:29:30.000Z","metadata":{"orderId":"cs_test_a1hookflowCheckoutSession0001","clerkId":"user_2hookflowClerkId0001","videoCallUrl":"https://app.cal.com/video/bk8hookflowPackUid0001"},"user":{"email":"mentor@example.com","name":"Grace Hopper","timeZone":"Europe/London"},"attendees":[{"email":"ada@example.com","name":"Ada Lovelace","timeZone":"Europe/London"}],"references":[{"type":"daily_video","meetingUrl":"https://app.cal.com/video/bk8hookflowPackUid0001"}]}"#;

const POSTMARK_BOUNCE: &str = r#"{
  "RecordType": "Bounce",
  "MessageStream": "outbound",
  "ID": 4323372036854775807,
  "Type": "HardBounce",
  "TypeCode": 1,
  "Name": "Hard bounce",
  "Tag": "booking-confirmation",
  "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
  "Metadata": {
    "clerkId": "user_2hookflowClerkId0001"
  },
  "ServerID": 23,
  "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
  "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
  "Email": "nobody@example.com",
  "From": "mentors@example.com",
  "BouncedAt": "@ISO@",
  "DumpAvailable": true,
  "Inactive": true,
  "CanActivate": true,
  "Subject": "Your mentoring session is booked"
}"#;

const POSTMARK_DELIVERY: &str = r#"{
  "RecordType": "Delivery",
  "ServerID": 23,
  "MessageStream": "outbound",
  "MessageID": "00000000-0000-0000-0000-0000hookflow1",
  "Recipient": "ada@example.com",
  "Tag": "booking-confirmation",
  "DeliveredAt": "@ISO@",
  "Details": "smtp;250 2.0.0 OK",
  "Metadata": {
    "clerkId": "user_2hookflowClerkId0001"
  }
}"#;

const PRINTIFY_SHIPMENT_CREATED: &str = r#"{"id":"653b6be8-2ff7-4ab5-a7a6-6889a8b3bbf5","type":"order:shipment:created","created_at":"@ISO@","resource":{"id":"5a96f649b2439217d070f507","type":"order","data":{"shop_id":815256,"shipped_at":"@ISO@","carrier":{"code":"usps","tracking_number":"9400111899223817576457","tracking_url":"https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223817576457"},"skus":["hookflow-mug-11oz"]}}}"#;

/// The merch shop's payment for order `ord_1001` (the storefront names the
/// order in the payment intent's metadata).
const STRIPE_MERCH_PAID: &str = r#"{
  "id": "evt_3RhookflowMerchPaid0001",
  "object": "event",
  "api_version": "2025-05-28.basil",
  "created": @SECS@,
  "data": {
    "object": {
      "id": "pi_3RhookflowMerch0001",
      "object": "payment_intent",
      "amount": 2400,
      "amount_received": 2400,
      "currency": "usd",
      "customer": "cus_ShookflowCust04",
      "livemode": false,
      "metadata": {
        "orderId": "ord_1001"
      },
      "receipt_email": "ada@example.com",
      "status": "succeeded"
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": "req_hookflowMerchPaid01",
    "idempotency_key": null
  },
  "type": "payment_intent.succeeded"
}"#;

/// A declined card on the merch shop's order `ord_1002`.
const STRIPE_MERCH_FAILED: &str = r#"{
  "id": "evt_3RhookflowMerchFailed01",
  "object": "event",
  "api_version": "2025-05-28.basil",
  "created": @SECS@,
  "data": {
    "object": {
      "id": "pi_3RhookflowMerch0002",
      "object": "payment_intent",
      "amount": 1200,
      "amount_received": 0,
      "currency": "usd",
      "last_payment_error": {
        "code": "card_declined",
        "message": "Your card was declined."
      },
      "livemode": false,
      "metadata": {
        "orderId": "ord_1002"
      },
      "status": "requires_payment_method"
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": "req_hookflowMerchFailed01",
    "idempotency_key": null
  },
  "type": "payment_intent.payment_failed"
}"#;

const CLERK_USER_UPDATED: &str = r#"{"data":{"created_at":1748000000000,"email_addresses":[{"email_address":"ada.lovelace@example.com","id":"idn_2hookflowEmail0002","linked_to":[],"object":"email_address","verification":{"status":"verified","strategy":"email_code"}}],"external_id":null,"first_name":"Ada","id":"user_2hookflowClerkId0001","image_url":"https://img.clerk.com/hookflow-test","last_name":"King","last_sign_in_at":null,"object":"user","primary_email_address_id":"idn_2hookflowEmail0002","private_metadata":{},"public_metadata":{},"unsafe_metadata":{},"updated_at":@MS@,"username":null},"event_attributes":{"http_request":{"client_ip":"203.0.113.7","user_agent":"Mozilla/5.0"}},"instance_id":"ins_2hookflowInstance01","object":"event","timestamp":@MS@,"type":"user.updated"}"#;

const CLERK_USER_DELETED: &str = r#"{"data":{"deleted":true,"id":"user_2hookflowClerkId0001","object":"user"},"event_attributes":{"http_request":{"client_ip":"203.0.113.7","user_agent":"Mozilla/5.0"}},"instance_id":"ins_2hookflowInstance01","object":"event","timestamp":@MS@,"type":"user.deleted"}"#;

const PRINTIFY_PUBLISH_STARTED: &str = r#"{"id":"8a1c0f3e-5d2b-4c9a-9f61-0hookflow0022","type":"product:publish:started","created_at":"@ISO@","resource":{"id":"5d39b159e7c48c000728c89f","type":"product","data":{"shop_id":815256,"publish_details":{"title":true,"variants":true,"description":true,"tags":true,"images":true,"key_features":true,"shipping_template":true},"action":"create","out_of_stock_publishing":0}}}"#;

const PRINTIFY_PRODUCT_DELETED: &str = r#"{"id":"8a1c0f3e-5d2b-4c9a-9f61-0hookflow0023","type":"product:deleted","created_at":"@ISO@","resource":{"id":"5d39b159e7c48c000728c8aa","type":"product","data":{"shop_id":815256}}}"#;

const DISCORD_PING: &str = r#"{"application_id":"1300000000000000001","id":"1300000000000000100","token":"aW50ZXJhY3Rpb246cGluZw","type":1,"user":{"id":"643945264868098049","username":"discord"},"version":1}"#;

const DISCORD_COMMAND: &str = r#"{"app_permissions":"562949953601536","application_id":"1300000000000000001","channel_id":"1300000000000000300","data":{"id":"1300000000000000050","name":"book","options":[{"name":"mentor","type":3,"value":"mentor_42"}],"type":1},"guild_id":"1300000000000000200","id":"1300000000000000101","locale":"en-US","member":{"user":{"id":"1300000000000000400","username":"ada"}},"token":"aW50ZXJhY3Rpb246Y29tbWFuZA","type":2,"version":1}"#;
