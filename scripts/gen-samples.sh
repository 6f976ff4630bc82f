#!/usr/bin/env bash
# Regenerates the signed webhook samples in events/webhook-*.json and the PayPal
# test certificate (shared/webhooks/testdata/paypal-test-cert.pem) from fixed
# TEST secrets and keys. Deterministic: running it twice changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p hookflow-webhooks --example gen-samples
