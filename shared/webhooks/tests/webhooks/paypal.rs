//! PayPal: RSA-SHA256 over `id|time|webhook_id|crc32`, certificates fetched
//! only from allow-listed origins, cached.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookflow_webhooks::test_secrets as secrets;
use hookflow_webhooks::{
    AllowedOrigin, HttpCertFetcher, PaypalCerts, Provider, Receiver, RecordingSink,
    StaticCertFetcher, WebhookError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::samples;
use crate::support::{self, provider_suite};

const CAPTURE: &str = "webhook-paypal-payment-capture-completed.json";
const CERT_PATH: &str = "/v1/notifications/certs/CERT-local-test";

provider_suite!(signed_body: CAPTURE, "paypal-transmission-sig");

#[tokio::test]
async fn capture_completed_becomes_a_paypal_event_keyed_by_its_id() {
    let events = support::assert_accepted(CAPTURE).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "paypal/PAYMENT.CAPTURE.COMPLETED");
    assert_eq!(events[0].id, "WH-2HOOKFLOW0000000-00000000000000000");
    let custom: serde_json::Value =
        serde_json::from_str(events[0].data["resource"]["custom_id"].as_str().unwrap()).unwrap();
    assert_eq!(custom["clerkId"], "user_2hookflowClerkId0001");
    assert_eq!(custom["packId"], "pack_3_sessions");
}

#[tokio::test]
async fn every_signed_header_is_required() {
    for header in [
        "paypal-transmission-id",
        "paypal-transmission-time",
        "paypal-cert-url",
        "paypal-auth-algo",
    ] {
        support::assert_missing_header_rejected(CAPTURE, header).await;
    }
}

#[tokio::test]
async fn changed_transmission_time_is_rejected() {
    let sample = support::load(CAPTURE);
    let request = support::with_header(
        &sample.request,
        "paypal-transmission-time",
        "2025-06-02T10:19:31Z",
    );
    support::assert_rejected_with(
        &support::receiver(),
        Provider::Paypal,
        &request,
        sample.now_ms,
        401,
    )
    .await;
}

#[tokio::test]
async fn other_algorithms_are_rejected() {
    let sample = support::load(CAPTURE);
    let request = support::with_header(&sample.request, "paypal-auth-algo", "SHA1withRSA");
    support::assert_rejected_with(
        &support::receiver(),
        Provider::Paypal,
        &request,
        sample.now_ms,
        401,
    )
    .await;
}

#[tokio::test]
async fn non_paypal_certificate_urls_are_rejected_without_fetching() {
    // GIVEN a fetcher that would happily serve the test certificate anywhere
    let sample = support::load(CAPTURE);
    for url in [
        "https://evil.example/v1/notifications/certs/CERT-hookflow-test",
        "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-hookflow-test",
        "https://api.sandbox.paypal.com.evil.example/v1/notifications/certs/CERT-hookflow-test",
        "https://api.sandbox.paypal.com@evil.example/v1/notifications/certs/CERT-hookflow-test",
        "https://api.sandbox.paypal.com:8443/v1/notifications/certs/CERT-hookflow-test",
        "https://api.sandbox.paypal.com/v1/oauth2/token",
        "http://127.0.0.1/v1/notifications/certs/CERT-hookflow-test",
    ] {
        let fetcher = StaticCertFetcher::new().with_cert(url, secrets::PAYPAL_CERT_PEM);
        let receiver =
            Receiver::with_paypal_certs(secrets::config().unwrap(), PaypalCerts::new(fetcher));
        let request = support::with_header(&sample.request, "paypal-cert-url", url);
        // WHEN delivered THEN 401 and the fetcher was never called
        support::assert_rejected_with(&receiver, Provider::Paypal, &request, sample.now_ms, 401)
            .await;
        assert_eq!(
            receiver.paypal_certs().fetcher().calls(),
            0,
            "{url} was fetched"
        );
    }
}

#[tokio::test]
async fn certificate_is_fetched_once_then_cached() {
    let sample = support::load(CAPTURE);
    let receiver = support::receiver();
    for _ in 0..3 {
        let (response, _) =
            support::deliver(&receiver, Provider::Paypal, &sample.request, sample.now_ms).await;
        assert_eq!(response.status, 200);
    }
    assert_eq!(receiver.paypal_certs().fetcher().calls(), 1);
}

#[tokio::test]
async fn cache_is_bounded() {
    let pem = secrets::PAYPAL_CERT_PEM;
    let urls: Vec<String> = (0..5)
        .map(|i| format!("https://api.paypal.com/v1/notifications/certs/CERT-{i}"))
        .collect();
    let fetcher = urls.iter().fold(StaticCertFetcher::new(), |f, url| {
        f.with_cert(url.clone(), pem)
    });
    let certs = PaypalCerts::new(fetcher).with_capacity(2);
    for url in &urls {
        certs.key(url, 1_748_859_330_000).await.unwrap();
    }
    assert_eq!(certs.cached(), 2);
    // The oldest was evicted: asking again fetches again.
    certs.key(&urls[0], 1_748_859_330_000).await.unwrap();
    assert_eq!(certs.fetcher().calls(), 6);
}

#[tokio::test]
async fn expired_or_not_yet_valid_certificate_is_rejected() {
    let certs = secrets::paypal_certs();
    let after_expiry = 2_600_000_000_000;
    let before_validity = 1_600_000_000_000;
    for now_ms in [after_expiry, before_validity] {
        let err = certs
            .key(secrets::PAYPAL_CERT_URL, now_ms)
            .await
            .unwrap_err();
        assert!(matches!(err, WebhookError::InvalidCertificate(_)), "{err}");
    }
}

#[tokio::test]
async fn certificate_fetch_failure_is_503_so_paypal_retries() {
    let sample = support::load(CAPTURE);
    let receiver = Receiver::with_paypal_certs(
        secrets::config().unwrap(),
        PaypalCerts::new(StaticCertFetcher::new()),
    );
    support::assert_rejected_with(
        &receiver,
        Provider::Paypal,
        &sample.request,
        sample.now_ms,
        503,
    )
    .await;
}

/// Serves `pem` at [`CERT_PATH`] (404 elsewhere) on 127.0.0.1 for `max`
/// connections; returns the port and a request counter.
async fn serve_certificate(
    pem: String,
    max: usize,
) -> (u16, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let server = tokio::spawn(async move {
        for _ in 0..max {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let first_line = String::from_utf8_lossy(&request)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            let (status, body) = if first_line.starts_with(&format!("GET {CERT_PATH} ")) {
                ("200 OK", pem.clone())
            } else {
                ("404 Not Found", String::new())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/x-pem-file\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (port, hits, server)
}

#[tokio::test]
async fn real_http_fetch_from_an_allowed_local_origin_verifies() {
    // GIVEN a certificate generated in the test, served by a local HTTP server
    // that the allow-list names explicitly
    let (port, hits, server) = serve_certificate(samples::paypal_test_cert_pem(), 4).await;
    let url = format!("http://127.0.0.1:{port}{CERT_PATH}");
    let certs = PaypalCerts::with_allowed_origins(
        HttpCertFetcher::new().unwrap(),
        vec![AllowedOrigin::new("http", "127.0.0.1", port)],
    );
    let receiver = Receiver::with_paypal_certs(secrets::config().unwrap(), certs);
    let sample = support::load(CAPTURE);
    let request = support::with_header(&sample.request, "paypal-cert-url", &url);
    // WHEN the delivery arrives twice
    let sink = RecordingSink::new();
    for _ in 0..2 {
        let response = receiver
            .handle(Provider::Paypal, &request, &sink, sample.now_ms)
            .await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
    // THEN both verify, the certificate was downloaded once
    assert_eq!(sink.events().len(), 2);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // AND a forged body is still rejected with the cached key
    let forged = support::tampered(&request);
    support::assert_rejected_with(&receiver, Provider::Paypal, &forged, sample.now_ms, 401).await;
    // AND a URL on the same origin but a missing certificate is a 503
    let missing = support::with_header(
        &request,
        "paypal-cert-url",
        &format!("http://127.0.0.1:{port}/v1/notifications/certs/CERT-missing"),
    );
    support::assert_rejected_with(&receiver, Provider::Paypal, &missing, sample.now_ms, 503).await;
    server.abort();
}

#[tokio::test]
async fn production_fetcher_refuses_the_local_origin() {
    // GIVEN the default (PayPal-only) allow-list and a local server
    let (port, hits, server) = serve_certificate(samples::paypal_test_cert_pem(), 1).await;
    let receiver = Receiver::new(secrets::config().unwrap()).unwrap();
    let sample = support::load(CAPTURE);
    let url = format!("http://127.0.0.1:{port}{CERT_PATH}");
    let request = support::with_header(&sample.request, "paypal-cert-url", &url);
    // WHEN delivered THEN 401 and the server saw nothing
    let sink = RecordingSink::new();
    let response = receiver
        .handle(Provider::Paypal, &request, &sink, sample.now_ms)
        .await;
    assert_eq!(response.status, 401, "{}", response.body);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    server.abort();
}
