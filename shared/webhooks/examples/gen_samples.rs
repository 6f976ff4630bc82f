//! Regenerates the signed sample requests in `events/webhook-*.json` and the
//! PayPal test certificate in `shared/webhooks/testdata/`, deterministically.
//!
//! Run with `scripts/gen-samples.sh` (or
//! `cargo run -p hookflow-webhooks --example gen-samples`). The tests fail if
//! the files differ from what this writes.

#[path = "../tests/webhooks/samples.rs"]
mod samples;

use std::error::Error;
use std::fs;
use std::path::Path;

fn main() -> Result<(), Box<dyn Error>> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let events_dir = crate_dir.join("../../events");
    fs::create_dir_all(&events_dir)?;
    let samples = samples::all();
    // Remove stale samples of ours (a renamed sample must not linger).
    for entry in fs::read_dir(&events_dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let ours = hookflow_webhooks::Provider::ALL
            .iter()
            .any(|provider| name.starts_with(&format!("webhook-{provider}-")));
        if ours && !samples.iter().any(|sample| sample.file_name == name) {
            fs::remove_file(events_dir.join(&name))?;
            println!("removed  events/{name}");
        }
    }
    for sample in &samples {
        fs::write(events_dir.join(sample.file_name), samples::render(sample))?;
        println!(
            "wrote    events/{} ({}, signed at {} ms, event {})",
            sample.file_name,
            sample.provider,
            sample.time_ms,
            sample.event_name.unwrap_or("none"),
        );
    }
    fs::write(
        crate_dir.join("testdata/paypal-test-cert.pem"),
        samples::paypal_test_cert_pem(),
    )?;
    println!(
        "wrote    shared/webhooks/testdata/paypal-test-cert.pem (base {} s)",
        samples::BASE_SECS
    );
    Ok(())
}
