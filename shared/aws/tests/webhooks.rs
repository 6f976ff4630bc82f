//! Every signed sample in `events/` through its webhook Lambda's handler (the
//! API Gateway HTTP API payload parsed by `lambda_http`, as in Lambda), storing
//! into DynamoDB and the router queue on a local AWS endpoint.

use hookflow::store::EventLog;
use hookflow_aws::lambda::handle_http;
use hookflow_aws::testing::AwsTestEnv;
use hookflow_webhooks::{ApiGatewayV2Request, test_secrets};
use serde_json::Value;

#[tokio::test]
async fn every_provider_sample_is_accepted_by_its_lambda_and_a_tampered_one_is_not() {
    let env = AwsTestEnv::new(vec![]).await;
    let receiver = test_secrets::receiver().unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("webhook-") {
            continue;
        }
        seen += 1;
        let json = std::fs::read_to_string(&path).unwrap();
        let sample = ApiGatewayV2Request::from_json(json.as_bytes()).unwrap();
        let provider = sample.provider().unwrap();
        env.clock.set(sample.time_epoch_ms().unwrap());

        let request = lambda_http::request::from_str(&json).unwrap();
        let response = handle_http(
            &receiver,
            &env.engine.ingest,
            env.engine.clock().as_ref(),
            provider,
            request,
        )
        .await;
        assert_eq!(response.status(), 200, "{name}");
        let body: Value = match response.body() {
            lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
            _ => Value::Null,
        };
        for id in body["events"].as_array().into_iter().flatten() {
            let stored = env.store().get_event(id.as_str().unwrap()).await.unwrap();
            assert!(stored.is_some(), "{name}: event {id} stored in DynamoDB");
        }

        // The same delivery with a different body is refused.
        let mut tampered: Value = serde_json::from_str(&json).unwrap();
        if name.contains("postmark") {
            let auth = tampered["headers"]["authorization"]
                .as_str()
                .unwrap()
                .to_owned();
            tampered["headers"]["authorization"] = Value::String(format!("{auth}x"));
        } else {
            let body = sample.body_bytes().unwrap();
            let mut text = String::from_utf8(body).unwrap();
            text.insert(text.len() - 1, ' ');
            tampered["body"] = Value::String(text);
            tampered["isBase64Encoded"] = Value::Bool(false);
        }
        let request = lambda_http::request::from_str(&tampered.to_string()).unwrap();
        let response = handle_http(
            &receiver,
            &env.engine.ingest,
            env.engine.clock().as_ref(),
            provider,
            request,
        )
        .await;
        assert_eq!(response.status(), 401, "{name} tampered");
    }
    assert!(seen >= 14, "samples found: {seen}");
}
