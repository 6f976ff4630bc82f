//! What a webhook endpoint answers: a status and a JSON body.
//!
//! Providers only look at the status (Discord also reads the body as the
//! interaction response), so bodies are short and never echo the request.

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::WebhookError;

/// An HTTP response: status code and JSON body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookResponse {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl WebhookResponse {
    /// A 200 with the given body.
    #[must_use]
    pub fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    /// The response for an error: its status and `{"error": "..."}`.
    #[must_use]
    pub fn from_error(err: &WebhookError) -> Self {
        Self {
            status: err.status(),
            body: json!({ "error": err.public_message() }),
        }
    }

    /// Whether the status is 2xx.
    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body serialized as a string.
    #[must_use]
    pub fn body_string(&self) -> String {
        self.body.to_string()
    }

    /// This response as an API Gateway HTTP API (payload 2.0) Lambda result:
    /// `{"statusCode", "headers": {"content-type": "application/json"}, "body"}`.
    #[must_use]
    pub fn to_api_gateway_v2(&self) -> Value {
        json!({
            "statusCode": self.status,
            "headers": { "content-type": "application/json" },
            "isBase64Encoded": false,
            "body": self.body_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_details_from_the_caller() {
        let err = WebhookError::NotConfigured {
            provider: crate::Provider::Stripe,
            var: "STRIPE_WEBHOOK_SECRET",
        };
        let response = WebhookResponse::from_error(&err);
        assert_eq!(response.status, 500);
        assert!(
            !response.body_string().contains("STRIPE"),
            "{}",
            response.body_string()
        );
    }

    #[test]
    fn api_gateway_result_carries_status_and_string_body() {
        let value = WebhookResponse::ok(json!({"type": 1})).to_api_gateway_v2();
        assert_eq!(value["statusCode"], 200);
        assert_eq!(value["body"], "{\"type\":1}");
    }
}
