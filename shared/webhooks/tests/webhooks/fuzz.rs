//! Property tests: no header parser, verifier or adapter panics on any
//! input, and arbitrary headers never get a delivery accepted.

use hookflow_webhooks::{
    ApiGatewayV2Request, PaypalCerts, Provider, RecordingSink, StaticCertFetcher, WebhookRequest,
    cal, clerk, crypto, discord, paypal, postmark, printify, shopify, stripe,
};
use proptest::prelude::*;

use crate::support;

/// Strings that look a bit like header values, plus anything at all.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[tv01a-f=, ]{0,120}",
        "(v1|v1a|v2),[A-Za-z0-9+/=]{0,60}( (v1|v2),[A-Za-z0-9+/=]{0,60}){0,3}",
        "(sha256=)?[0-9a-fA-F]{0,70}",
        "(Basic|basic|Bearer) [A-Za-z0-9+/=:]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn header_parsers_never_panic(value in header_value()) {
        let _ = stripe::parse_signature_header(&value);
        let _ = clerk::parse_signatures(&value);
        let _ = cal::parse_signature(&value);
        let _ = shopify::parse_signature(&value);
        let _ = printify::parse_signature(&value);
        let _ = postmark::parse_basic_auth(&value);
        let _ = discord::parse_signature(&value);
        let _ = paypal::parse_signature(&value);
        let _ = crypto::parse_unix_secs(&value);
        let _ = crypto::decode_hex_32(&value);
        let _ = crypto::decode_base64_32(&value);
        let _ = Provider::from_path(&value);
        let _ = PaypalCerts::new(StaticCertFetcher::new()).check_url(&value);
    }

    #[test]
    fn certificate_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = hookflow_webhooks::providers::paypal::certs::parse_certificate(&bytes);
        let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
        pem.extend_from_slice(&bytes);
        pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
        let _ = hookflow_webhooks::providers::paypal::certs::parse_certificate(&pem);
    }

    #[test]
    fn api_gateway_adapter_never_panics(json in any::<String>(), body in any::<String>(), b64 in any::<bool>()) {
        let _ = WebhookRequest::from_api_gateway_v2(json.as_bytes());
        let event = serde_json::json!({ "headers": { "x": json }, "body": body, "isBase64Encoded": b64 });
        let _ = ApiGatewayV2Request::from_value(event).and_then(ApiGatewayV2Request::into_webhook_request);
    }

    #[test]
    fn random_signature_headers_are_never_accepted(
        values in proptest::collection::vec(header_value(), 4),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        now_ms in any::<i64>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let receiver = support::receiver();
        for provider in Provider::ALL {
            let names: &[&str] = match provider {
                Provider::Stripe => &["stripe-signature"],
                Provider::Clerk => &["svix-id", "svix-timestamp", "svix-signature"],
                Provider::Paypal => &["paypal-transmission-id", "paypal-transmission-time", "paypal-transmission-sig", "paypal-cert-url"],
                Provider::Cal => &["x-cal-signature-256"],
                Provider::Shopify => &["x-shopify-hmac-sha256", "x-shopify-topic", "x-shopify-shop-domain", "x-shopify-event-id"],
                Provider::Postmark => &["authorization"],
                Provider::Printify => &["x-pfy-signature"],
                Provider::Discord => &["x-signature-ed25519", "x-signature-timestamp"],
            };
            let mut request = WebhookRequest::new(body.clone()).with_header("paypal-auth-algo", "SHA256withRSA");
            for (name, value) in names.iter().zip(&values) {
                request = request.with_header(*name, value.clone());
            }
            let sink = RecordingSink::new();
            let response = runtime.block_on(receiver.handle(provider, &request, &sink, now_ms));
            prop_assert!(response.status == 401 || response.status == 503, "{provider}: {}", response.status);
            prop_assert!(sink.batches().is_empty());
        }
    }
}
