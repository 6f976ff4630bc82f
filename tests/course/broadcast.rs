//! `email-send-broadcast` end to end, from
//! `events/event-email-send-broadcast.json`: a subscribed user (preference
//! created active) gets the email once with its unsubscribe header; an
//! unsubscribed user gets nothing; an unknown user or missing setup fails at
//! once; a Resend outage is retried with the same idempotency key.

use std::sync::Arc;

use course::{
    CHANNELS, Channel, CommunicationPreference, PREFERENCE_TYPES, PREFERENCES, PreferenceType,
    USERS, User, preference_key,
};
use hookflow::{Event, Function, Run, RunStatus};
use hookflow_clients::testing::{RESEND_PREFIX, Reply, SLACK_PATH, TestServer};
use hookflow_clients::{Services, Settings};
use hookflow_docs::DocStore;
use serde_json::{Value, json};

const SAMPLE: &str = include_str!("../../events/event-email-send-broadcast.json");
const EMAILS: &str = "/emails";

/// The sample event, for user `to` (the sample's own when `None`).
fn broadcast(to: Option<&str>) -> Event {
    let sample: Value = serde_json::from_str(SAMPLE).unwrap();
    let mut data = sample["data"].clone();
    if let Some(to) = to {
        data["toUserId"] = json!(to);
    }
    Event::new(sample["name"].as_str().unwrap(), data)
}

fn services(server: &TestServer, docs: DocStore) -> Services {
    Services::new(
        docs,
        server.clients(),
        Settings::default().with_course(
            "Course Site",
            "support@course.example",
            "https://course.example/",
        ),
    )
}

fn functions(services: &Services) -> Vec<Function> {
    vec![email_send_broadcast::function(services)]
}

/// GIVEN the platform's preference type and channel, Ada (no preference
/// yet) and Bob (unsubscribed).
async fn seed(docs: &DocStore, with_setup: bool) {
    if with_setup {
        let kind = PreferenceType {
            id: "pt_newsletter".into(),
            name: "Newsletter".into(),
        };
        docs.create(PREFERENCE_TYPES, "Newsletter", &kind)
            .await
            .unwrap();
        let channel = Channel {
            id: "ch_email".into(),
            name: "Email".into(),
        };
        docs.create(CHANNELS, "Email", &channel).await.unwrap();
    }
    for (id, email) in [("u_ada", "ada@example.com"), ("u_bob", "bob@example.com")] {
        let user = User {
            id: id.into(),
            email: email.into(),
            name: None,
        };
        docs.create(USERS, id, &user).await.unwrap();
    }
    let off = CommunicationPreference {
        active: false,
        ..CommunicationPreference::active("u_bob", "pt_newsletter", "ch_email")
    };
    let key = preference_key("u_bob", "pt_newsletter");
    docs.create(PREFERENCES, &key, &off).await.unwrap();
}

fn only<'a>(runs: &'a [Run], id: &str) -> &'a Run {
    let mine: Vec<&Run> = runs.iter().filter(|r| r.function_id == id).collect();
    assert_eq!(mine.len(), 1, "{runs:#?}");
    mine[0]
}

macro_rules! course_tests {
    ($world:expr) => {
        use super::*;

        #[tokio::test]
        async fn a_subscribed_user_gets_the_broadcast_once_with_an_unsubscribe_link() {
            let server = TestServer::start().await;
            server.on(
                "POST",
                &format!("{RESEND_PREFIX}{EMAILS}"),
                Reply::json(200, &json!({"id": "em_1"})),
            );
            let (env, docs) = $world(&server).await;
            seed(&docs, true).await;
            // WHEN the sample broadcast is sent to Ada
            env.send(vec![broadcast(None)]).await;
            // THEN one email went out, from the platform, with its headers
            let runs = env.runs().await;
            let run = only(&runs, "email-send-broadcast");
            assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
            assert_eq!(run.output, Some(json!({"emailId": "em_1"})));
            let sent = server.requests_to("POST", &format!("{RESEND_PREFIX}{EMAILS}"));
            assert_eq!(sent.len(), 1);
            let email = sent[0].json();
            assert_eq!(email["from"], "Course Site <support@course.example>");
            assert_eq!(email["to"], json!(["ada@example.com"]));
            assert_eq!(email["subject"], "Cohort 4 opens on Monday");
            assert_eq!(
                email["headers"]["List-Unsubscribe"],
                "<https://course.example/unsubscribed?userId=u_ada>"
            );
            assert_eq!(email["tags"], json!([{"name": "type", "value": "broadcast"}]));
            assert!(email["html"].as_str().unwrap().contains("Enrolment opens Monday"));
            // AND her preference now exists, active
            let key = preference_key("u_ada", "pt_newsletter");
            let (preference, _) = docs
                .get::<CommunicationPreference>(PREFERENCES, &key)
                .await
                .unwrap()
                .unwrap();
            assert!(preference.active);
        }

        #[tokio::test]
        async fn an_unsubscribed_user_gets_nothing() {
            let server = TestServer::start().await;
            let (env, docs) = $world(&server).await;
            seed(&docs, true).await;
            env.send(vec![broadcast(Some("u_bob"))]).await;
            let runs = env.runs().await;
            let run = only(&runs, "email-send-broadcast");
            assert_eq!(run.status, RunStatus::Completed);
            assert_eq!(run.output, Some(json!("User has unsubscribed")));
            assert!(server.requests().is_empty(), "no email");
        }

        #[tokio::test]
        async fn an_unknown_user_or_missing_setup_fails_at_once() {
            let server = TestServer::start().await;
            let (env, docs) = $world(&server).await;
            seed(&docs, false).await;
            env.send(vec![broadcast(None)]).await;
            let (env2, docs2) = $world(&server).await;
            seed(&docs2, true).await;
            env2.send(vec![broadcast(Some("u_nobody"))]).await;
            for (env_runs, why) in [
                (env.runs().await, "Preference type or channel not found"),
                (env2.runs().await, "User not found"),
            ] {
                let run = only(&env_runs, "email-send-broadcast");
                assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
                assert!(run.error.as_deref().unwrap().contains(why), "{run:#?}");
                assert_eq!(run.attempt, 0, "not retried");
            }
            // No email; the admins are told of each failure (on_failure).
            assert!(server.requests_to("POST", &format!("{RESEND_PREFIX}{EMAILS}")).is_empty());
            assert_eq!(server.requests_to("POST", SLACK_PATH).len(), 2);
        }

        #[tokio::test]
        async fn a_resend_outage_is_retried_with_the_same_idempotency_key() {
            let server = TestServer::start().await;
            server.on_sequence(
                "POST",
                &format!("{RESEND_PREFIX}{EMAILS}"),
                [
                    Reply::json(500, &json!({"name": "internal_server_error"})),
                    Reply::json(200, &json!({"id": "em_2"})),
                ],
            );
            let (env, docs) = $world(&server).await;
            seed(&docs, true).await;
            env.send(vec![broadcast(None)]).await;
            env.advance(std::time::Duration::from_secs(60)).await;
            let runs = env.runs().await;
            let run = only(&runs, "email-send-broadcast");
            assert_eq!(run.output, Some(json!({"emailId": "em_2"})), "{run:#?}");
            let sent = server.requests_to("POST", &format!("{RESEND_PREFIX}{EMAILS}"));
            assert_eq!(sent.len(), 2);
            let keys: Vec<_> = sent.iter().map(|r| r.header("idempotency-key")).collect();
            assert!(keys[0].is_some() && keys[0] == keys[1], "{keys:?}");
        }
    };
}

mod sqlite {
    use hookflow_embedded::SqliteStore;
    use hookflow_embedded::testing::{START_MS, TestEnv};

    async fn world(server: &TestServer) -> (TestEnv, DocStore) {
        let store = SqliteStore::in_memory().unwrap();
        let clock = hookflow::FakeClock::new(START_MS);
        let docs = DocStore::new(store.clone()).with_clock(Arc::new(clock.clone()));
        let env = TestEnv::with_store(store, functions(&services(server, docs.clone())), clock);
        (env, docs)
    }

    course_tests!(world);
}

mod aws {
    use hookflow_aws::testing::AwsTestEnv;

    async fn world(server: &TestServer) -> (AwsTestEnv, DocStore) {
        let env = AwsTestEnv::with_docs(|docs| functions(&services(server, docs))).await;
        let docs = env.docs();
        (env, docs)
    }

    course_tests!(world);
}
