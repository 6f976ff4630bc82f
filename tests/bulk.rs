//! Bulk actions by filter, on SQLite and on moto: a dry run counts, a
//! replay of every failed "pro" run starts one replay each however often it
//! is repeated, a time range and a CEL `if` narrow it, and a cancel of every
//! sleeping run stops them.

use std::time::Duration;

use hookflow::{BulkAction, BulkFilter, Function, NonRetriable, RunStatus};
use hookflow_clients::testing::TestServer;
use hookflow_tests::backend::Backend;
use hookflow_tests::world::Base;
use serde_json::json;

const START: i64 = 1_748_859_330_000;

fn functions() -> Vec<Function> {
    vec![
        Function::new("sync")
            .on_event("shop/sync")
            .handler(|ctx| async move {
                if ctx.event.data["fail"] == true {
                    return Err(NonRetriable::new("upstream refused").into());
                }
                ctx.step.sleep("wait", Duration::from_secs(3600)).await?;
                Ok(json!({}))
            }),
    ]
}

async fn sqlite() -> Base<hookflow_embedded::testing::TestEnv> {
    Base::sqlite(TestServer::start().await, START, |_, _| functions())
}

async fn aws() -> Base<hookflow_aws::testing::AwsTestEnv> {
    Base::aws(TestServer::start().await, START, |_, _| functions()).await
}

async fn bulk_actions_by_filter<B: Backend>(world: Base<B>) {
    // GIVEN three failed runs (two for "pro" shops) and two sleeping ones
    for (plan, fail) in [
        ("pro", true),
        ("pro", true),
        ("free", true),
        ("pro", false),
        ("free", false),
    ] {
        world
            .send("shop/sync", json!({"plan": plan, "fail": fail}))
            .await;
        world.advance(Duration::from_secs(1)).await;
    }
    let engine = world.env.engine();
    // (as the CLI does, `until` is pinned to when the operation began, so a
    // repeat does not take in the replays it made)
    let began = world.now_ms() + 1;
    world.advance(Duration::from_secs(1)).await;
    let failed_pro = BulkFilter {
        function_id: Some("sync".into()),
        status: Some(RunStatus::Failed),
        until: Some(began),
        condition: Some("event.data.plan == 'pro'".into()),
        ..BulkFilter::default()
    };
    // WHEN a dry run asks what a replay would do
    let dry = engine
        .bulk(&failed_pro, BulkAction::Replay, true)
        .await
        .unwrap();
    // THEN it counts two and starts nothing
    assert_eq!((dry.matched, dry.acted.len(), dry.more), (2, 2, false));
    assert!(dry.acted.iter().all(|(_, replay)| replay.is_none()));
    world.env.settle().await;
    assert_eq!(world.runs_of("sync").await.len(), 5);
    // WHEN the replay runs, is interrupted and run again before and after
    // its replays exist
    let done = engine
        .bulk(&failed_pro, BulkAction::Replay, false)
        .await
        .unwrap();
    let again = engine
        .bulk(&failed_pro, BulkAction::Replay, false)
        .await
        .unwrap();
    world.env.settle().await;
    let after = engine
        .bulk(&failed_pro, BulkAction::Replay, false)
        .await
        .unwrap();
    world.env.settle().await;
    // THEN each run was replayed once
    assert_eq!(done.acted, again.acted);
    assert!(after.acted.is_empty(), "{after:?}");
    assert_eq!(after.already_replayed, 2);
    let runs = world.runs_of("sync").await;
    assert_eq!(runs.len(), 7, "{runs:#?}");
    let replays: Vec<_> = runs.iter().filter(|r| r.replay_of.is_some()).collect();
    assert_eq!(replays.len(), 2);
    assert!(replays.iter().all(|r| r.event.data["plan"] == "pro"));
    // AND without the pinned `until`, the replays (failed again) are new
    // failures a replay takes up, once
    let unpinned = BulkFilter {
        until: None,
        ..failed_pro.clone()
    };
    let next = engine
        .bulk(&unpinned, BulkAction::Replay, true)
        .await
        .unwrap();
    assert_eq!((next.acted.len(), next.already_replayed), (2, 2));
    // AND a time range narrows it: only the first run was created that early
    let first_only = BulkFilter {
        until: Some(START + 500),
        ..unpinned.clone()
    };
    let first = engine
        .bulk(&first_only, BulkAction::Replay, true)
        .await
        .unwrap();
    assert_eq!(first.matched, 1);
    // WHEN every sleeping run is cancelled (a failed one is skipped)
    let sleeping = BulkFilter {
        function_id: Some("sync".into()),
        status: Some(RunStatus::Sleeping),
        ..BulkFilter::default()
    };
    let cancelled = engine
        .bulk(&sleeping, BulkAction::Cancel, false)
        .await
        .unwrap();
    world.env.settle().await;
    assert_eq!(cancelled.acted.len(), 2);
    let runs = world.runs_of("sync").await;
    assert_eq!(
        runs.iter()
            .filter(|r| r.status == RunStatus::Cancelled)
            .count(),
        2,
        "{runs:#?}"
    );
    let all = BulkFilter::default();
    let skipped = engine.bulk(&all, BulkAction::Cancel, true).await.unwrap();
    assert_eq!(skipped.acted.len(), 0);
    assert_eq!(skipped.skipped, skipped.matched);
    // AND a condition that does not compile is refused
    let bad = BulkFilter {
        condition: Some("event.data.(".into()),
        ..BulkFilter::default()
    };
    assert!(engine.bulk(&bad, BulkAction::Cancel, true).await.is_err());
}

#[tokio::test]
async fn sqlite_bulk_actions_by_filter() {
    bulk_actions_by_filter(sqlite().await).await;
}

#[tokio::test]
async fn aws_bulk_actions_by_filter() {
    bulk_actions_by_filter(aws().await).await;
}
