use std::collections::BTreeMap;

use hookflow_clients::testing::{Reply, STRIPE_KEY};
use hookflow_clients::{
    CalClient, ClientError, Clients, HttpClient, PostHogClient, SlackClient, StripeClient,
};
use serde_json::json;

use crate::setup;

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.get(name).cloned()
}

#[test]
fn missing_required_variables_are_all_named() {
    let http = HttpClient::new().unwrap();
    let env = lookup(&[("STRIPE_API_KEY", "sk_test_1"), ("CAL_API_KEY", "  ")]);

    let err = Clients::from_env(&http, &env).unwrap_err();

    assert_eq!(
        err.to_string(),
        "missing configuration: set CAL_API_KEY, CLERK_SECRET_KEY, DISCORD_BOT_TOKEN, POSTMARK_SERVER_TOKEN"
    );
    let err = CalClient::from_env(&http, &env).unwrap_err();
    assert_eq!(err.to_string(), "missing configuration: set CAL_API_KEY");
}

#[test]
fn analytics_and_alerts_are_optional() {
    let http = HttpClient::new().unwrap();
    let env = lookup(&[
        ("STRIPE_API_KEY", "sk_test_1"),
        ("CAL_API_KEY", "cal_1"),
        ("CLERK_SECRET_KEY", "sk_clerk"),
        ("DISCORD_BOT_TOKEN", "bot"),
        ("POSTMARK_SERVER_TOKEN", "pm"),
    ]);

    let clients = Clients::from_env(&http, &env).unwrap();

    assert!(!clients.posthog.is_enabled());
    assert!(!clients.slack.is_enabled());
    // Defaults: the providers' public endpoints.
    let debug = format!("{clients:?}");
    for host in [
        "api.stripe.com",
        "api.cal.com",
        "api.clerk.com",
        "discord.com",
        "api.postmarkapp.com",
    ] {
        assert!(debug.contains(host), "{host} in {debug}");
    }
}

#[test]
fn malformed_values_name_the_variable_but_not_the_value() {
    let http = HttpClient::new().unwrap();

    let err = StripeClient::from_env(
        &http,
        &lookup(&[
            ("STRIPE_API_KEY", "sk_1"),
            ("STRIPE_API_BASE", "ftp://stripe.internal"),
        ]),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::InvalidConfig {
                var: "STRIPE_API_BASE",
                ..
            }
        ),
        "{err:?}"
    );

    let err = SlackClient::from_env(
        &http,
        &lookup(&[("SLACK_WEBHOOK_URL", "hooks/T0/B0/secret")]),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "invalid SLACK_WEBHOOK_URL");
    assert!(!format!("{:#}", anyhow::Error::from(err)).contains("secret"));

    let err = StripeClient::new(&http, "sk_live\nX-Injected: 1").unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::InvalidConfig {
                var: "STRIPE_API_KEY",
                ..
            }
        ),
        "{err:?}"
    );

    let err = PostHogClient::from_env(
        &http,
        &lookup(&[("POSTHOG_API_KEY", "phc_1"), ("POSTHOG_HOST", "not a url")]),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::InvalidConfig {
                var: "POSTHOG_HOST",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn clients_never_show_their_credentials_and_clones_share_the_endpoint() {
    let (server, clients) = setup().await;
    server.on(
        "GET",
        "/stripe/v1/checkout/sessions/cs_1",
        Reply::json(404, &json!({})),
    );

    let debug = format!("{clients:?}");
    for secret in server.env().values().filter(|v| !v.starts_with("http")) {
        assert!(!debug.contains(secret.as_str()), "{secret} in {debug}");
    }
    let clone = clients.stripe.clone();
    drop(clients);
    let _ = clone.retrieve_checkout_session("cs_1").await;
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(format!("Bearer {STRIPE_KEY}").as_str())
    );
}
