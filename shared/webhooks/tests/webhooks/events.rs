//! The samples in `events/` are the fixtures: every provider sample file is
//! loaded here, must be exactly what the generator writes, and must verify.

use std::collections::BTreeSet;

use hookflow_webhooks::test_secrets as secrets;
use hookflow_webhooks::{Provider, RecordingSink};

use crate::samples;
use crate::support;

/// Every `events/webhook-<provider>-*.json` file name.
fn sample_files() -> BTreeSet<String> {
    std::fs::read_dir(support::events_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| {
            Provider::ALL.iter().any(|provider| {
                name.starts_with(&format!("webhook-{provider}-")) && name.ends_with(".json")
            })
        })
        .collect()
}

#[test]
fn every_sample_file_is_generated_and_every_generated_sample_exists() {
    let on_disk = sample_files();
    let generated: BTreeSet<String> = samples::all()
        .iter()
        .map(|s| s.file_name.to_owned())
        .collect();
    assert_eq!(on_disk, generated, "run scripts/gen-samples.sh");
    assert_eq!(on_disk.len(), 27);
}

#[test]
fn sample_files_are_up_to_date_with_the_generator() {
    for sample in samples::all() {
        let path = support::events_dir().join(sample.file_name);
        let on_disk: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let generated: serde_json::Value = serde_json::from_str(&samples::render(&sample)).unwrap();
        assert_eq!(
            on_disk, generated,
            "{} is stale: run scripts/gen-samples.sh",
            sample.file_name
        );
    }
}

#[test]
fn paypal_test_certificate_is_up_to_date_with_the_generator() {
    assert_eq!(
        samples::paypal_test_cert_pem(),
        secrets::PAYPAL_CERT_PEM,
        "run scripts/gen-samples.sh"
    );
}

#[tokio::test]
async fn every_sample_file_verifies_at_its_signing_time() {
    // GIVEN each sample file, loaded through the API Gateway v2 adapter
    let receiver = support::receiver();
    let expected = samples::all();
    for file in sample_files() {
        let sample = support::load(&file);
        let meta = expected.iter().find(|s| s.file_name == file).unwrap();
        assert_eq!(sample.provider, meta.provider);
        assert_eq!(sample.now_ms, meta.time_ms);
        // WHEN handled at `requestContext.timeEpoch`
        let sink = RecordingSink::new();
        let response = receiver
            .handle(sample.provider, &sample.request, &sink, sample.now_ms)
            .await;
        // THEN 200 and the expected event (or none for a PING)
        assert_eq!(response.status, 200, "{file}: {}", response.body);
        let names: Vec<String> = sink.events().into_iter().map(|event| event.name).collect();
        assert_eq!(
            names,
            meta.event_name
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
            "{file}"
        );
    }
}

#[tokio::test]
async fn samples_are_signed_with_the_test_secrets_only() {
    // GIVEN receivers whose secrets differ WHEN any sample is delivered THEN 401
    for file in sample_files() {
        let sample = support::load(&file);
        let receiver = support::receiver_with_wrong_secret(sample.provider);
        support::assert_rejected_with(
            &receiver,
            sample.provider,
            &sample.request,
            sample.now_ms,
            401,
        )
        .await;
    }
}
