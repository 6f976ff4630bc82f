//! Rerun from a step, on SQLite and on moto: after the email step failed for
//! a day, a rerun from it keeps the charge (and the sleep) before it and runs
//! the email and what follows; the charge is not made again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hookflow::{Function, NonRetriable, RunStatus};
use hookflow_clients::testing::TestServer;
use hookflow_tests::Counter;
use hookflow_tests::backend::Backend;
use hookflow_tests::world::Base;
use serde_json::json;

const START: i64 = 1_748_859_330_000;

#[derive(Clone, Default)]
struct Shop {
    charges: Counter,
    emails: Counter,
    email_down: Arc<AtomicBool>,
}

impl Shop {
    fn checkout(&self) -> Function {
        let shop = self.clone();
        Function::new("checkout")
            .on_event("shop/checkout")
            .handler(move |ctx| {
                let shop = shop.clone();
                async move {
                    let charges = shop.charges.clone();
                    let charge: String = ctx
                        .step
                        .run("charge", move || async move {
                            Ok(format!("ch_{}", charges.bump()))
                        })
                        .await?;
                    ctx.step.sleep("cool-off", Duration::from_secs(60)).await?;
                    let (emails, down) = (shop.emails.clone(), shop.email_down.clone());
                    ctx.step
                        .run("email", move || async move {
                            let _ = emails.bump();
                            if down.load(Ordering::SeqCst) {
                                return Err(NonRetriable::new("email provider down").into());
                            }
                            Ok(())
                        })
                        .await?;
                    Ok(json!({ "charge": charge }))
                }
            })
    }
}

type World<B> = Base<B>;

fn shop() -> Shop {
    let shop = Shop::default();
    shop.email_down.store(true, Ordering::SeqCst);
    shop
}

async fn sqlite() -> (World<hookflow_embedded::testing::TestEnv>, Shop) {
    let shop = shop();
    let f = shop.checkout();
    (
        Base::sqlite(TestServer::start().await, START, |_, _| vec![f]),
        shop,
    )
}

async fn aws() -> (World<hookflow_aws::testing::AwsTestEnv>, Shop) {
    let shop = shop();
    let f = shop.checkout();
    (
        Base::aws(TestServer::start().await, START, |_, _| vec![f]).await,
        shop,
    )
}

async fn a_rerun_from_the_failed_step_keeps_the_charge<B: Backend>(
    (world, shop): (World<B>, Shop),
) {
    // GIVEN a checkout whose email step failed
    world.send("shop/checkout", json!({"order": "o1"})).await;
    world.advance(Duration::from_secs(120)).await;
    let failed = world.only("checkout").await;
    assert_eq!(failed.status, RunStatus::Failed, "{failed:#?}");
    assert_eq!((shop.charges.get(), shop.emails.get()), (1, 1));
    let engine = world.env.engine();
    // WHEN the provider is back and the run is rerun from the email
    shop.email_down.store(false, Ordering::SeqCst);
    let rerun = engine.rerun_from(&failed.id, "email").await.unwrap();
    world.env.settle().await;
    // THEN the new run completes without charging again or sleeping again
    let view = world.view(&rerun).await;
    assert_eq!(view.run.status, RunStatus::Completed, "{view:#?}");
    assert_eq!(view.run.replay_of.as_deref(), Some(failed.id.as_str()));
    assert_eq!(view.run.output, Some(json!({"charge": "ch_1"})));
    assert_eq!((shop.charges.get(), shop.emails.get()), (1, 2));
    let ids: Vec<&str> = view.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["charge", "cool-off", "email"]);
    // AND a rerun from the first step runs everything again
    let again = engine.rerun_from(&failed.id, "charge").await.unwrap();
    world.env.settle().await;
    world.advance(Duration::from_secs(120)).await;
    let view = world.view(&again).await;
    assert_eq!(view.run.output, Some(json!({"charge": "ch_2"})));
    assert_eq!(shop.charges.get(), 2);
    // AND a step the run never reached, or an unfinished run, is refused
    let err = engine.rerun_from(&failed.id, "refund").await.unwrap_err();
    assert!(err.to_string().contains("no step `refund`"), "{err}");
    world.send("shop/checkout", json!({"order": "o2"})).await;
    let sleeping = world
        .runs_of("checkout")
        .await
        .into_iter()
        .find(|r| r.status == RunStatus::Sleeping)
        .unwrap();
    let err = engine.rerun_from(&sleeping.id, "charge").await.unwrap_err();
    assert!(err.to_string().contains("has not finished"), "{err}");
}

#[tokio::test]
async fn sqlite_a_rerun_from_the_failed_step_keeps_the_charge() {
    a_rerun_from_the_failed_step_keeps_the_charge(sqlite().await).await;
}

#[tokio::test]
async fn aws_a_rerun_from_the_failed_step_keeps_the_charge() {
    a_rerun_from_the_failed_step_keeps_the_charge(aws().await).await;
}
