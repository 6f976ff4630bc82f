//! The operator commands (`hookflow runs|events|cancel|replay|dlq`) against
//! a real `hookflow dev` (its router and workers on a free port): the tables
//! a user reads and the `--json` a script parses.

mod dev_server;

use std::time::Duration;

use hookflow_cli::ops::{
    BulkArgs, DlqCommand, EventsCommand, Op, RunsCommand, Target, execute, execute_with,
};
use serde_json::Value;

async fn serve() -> (Target, dev_server::Dev) {
    let dev = dev_server::dev_server().await;
    let target = Target {
        stack: None,
        url: dev.url.clone(),
        token: None,
        json: false,
    };
    (target, dev)
}

fn json(target: &Target) -> Target {
    Target {
        json: true,
        ..target.clone()
    }
}

async fn run(op: Op, target: &Target) -> String {
    execute(&op, target).await.unwrap()
}

async fn run_json(op: Op, target: &Target) -> Value {
    serde_json::from_str(&run(op, &json(target)).await).unwrap()
}

fn hello(name: &str, delay: u64) -> Op {
    Op::Events(EventsCommand::Send {
        name: "demo/hello".into(),
        data: format!(r#"{{"name": "{name}", "delay_secs": {delay}}}"#),
        id: None,
    })
}

/// Waits until run `id` exists with `status` (run ids are known before
/// the router creates the runs).
async fn until(target: &Target, id: &str, status: &str) -> Value {
    for _ in 0..200 {
        let shown = execute(
            &Op::Runs(RunsCommand::Show { id: id.into() }),
            &json(target),
        )
        .await;
        if let Ok(text) = shown {
            let view: Value = serde_json::from_str(&text).unwrap();
            if view["status"] == status {
                return view;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("run {id} never became {status}");
}

/// Waits until `n` hello-world runs have `status`.
async fn until_listed(target: &Target, status: &str, n: usize) {
    for _ in 0..200 {
        let list = run_json(
            Op::Runs(RunsCommand::List {
                function: Some("hello-world".into()),
                status: Some(status.into()),
                limit: 10,
            }),
            target,
        )
        .await;
        if list["runs"].as_array().unwrap().len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never {n} {status} runs");
}

fn bulk(status: &str, dry_run: bool, yes: bool) -> BulkArgs {
    BulkArgs {
        function: Some("hello-world".into()),
        status: Some(status.into()),
        since: Some("1h".into()),
        until: None,
        condition: None,
        dry_run,
        yes,
    }
}

#[tokio::test]
async fn the_cli_shows_runs_and_events_and_acts_on_them() {
    let (dev, _stop) = serve().await;
    // WHEN an event is sent
    let sent = run_json(hello("Ada", 0), &dev).await;
    let run_id = sent["run_ids"][0].as_str().unwrap().to_owned();
    let event_id = sent["events"][0]["id"].as_str().unwrap().to_owned();
    let view = until(&dev, &run_id, "completed").await;
    assert_eq!(view["output"]["delivered"], "Hello, Ada!");
    // THEN it is listed, shown with its steps, and its event shows the run
    let list = run(
        Op::Runs(RunsCommand::List {
            function: Some("hello-world".into()),
            status: None,
            limit: 10,
        }),
        &dev,
    )
    .await;
    assert!(
        list.contains(&run_id) && list.contains("completed"),
        "{list}"
    );
    let shown = run(Op::Runs(RunsCommand::Show { id: run_id.clone() }), &dev).await;
    for expected in ["compose", "pause", "deliver", "output:"] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    let event = run_json(
        Op::Events(EventsCommand::Show {
            id: event_id.clone(),
        }),
        &dev,
    )
    .await;
    assert_eq!(event["runs"][0]["id"], run_id);
    let human = run(Op::Events(EventsCommand::Show { id: event_id }), &dev).await;
    assert!(
        human.contains("demo/hello") && human.contains(&run_id),
        "{human}"
    );
    // AND it can be rerun from its last step
    let rerun = run_json(
        Op::Runs(RunsCommand::Rerun {
            id: run_id.clone(),
            from: "deliver".into(),
        }),
        &dev,
    )
    .await;
    until(&dev, rerun["id"].as_str().unwrap(), "completed").await;

    // WHEN two runs sleep and are cancelled in bulk
    for name in ["Bob", "Eve"] {
        run(hello(name, 600), &dev).await;
    }
    until_listed(&dev, "sleeping", 2).await;
    let dry = run(Op::Cancel(bulk("sleeping", true, false)), &dev).await;
    assert!(dry.starts_with("2 run(s) to cancel"), "{dry}");
    let declined = execute_with(&Op::Cancel(bulk("sleeping", false, false)), &dev, &|q| {
        assert_eq!(q, "cancel 2 run(s)?");
        Ok(false)
    })
    .await
    .unwrap();
    assert_eq!(declined, "nothing done");
    let done = run(Op::Cancel(bulk("sleeping", false, true)), &dev).await;
    assert!(done.starts_with("2 run(s) cancelled"), "{done}");
    // (a cancellation is a request the workers apply a moment later)
    until_listed(&dev, "cancelled", 2).await;
    // AND the cancelled runs are replayed, once each however often asked
    let replayed = run_json(Op::Replay(bulk("cancelled", false, true)), &dev).await;
    assert_eq!(replayed["acted"].as_array().unwrap().len(), 2, "{replayed}");
    // (and a replay is created by the router a moment later)
    let mut again = Value::Null;
    for _ in 0..200 {
        again = run_json(Op::Replay(bulk("cancelled", false, true)), &dev).await;
        if again["already_replayed"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(again["acted"], serde_json::json!([]), "{again}");
    assert_eq!(again["already_replayed"], 2);
    // AND the dead-letter view is empty
    let dlq = run(Op::Dlq(DlqCommand::List { function: None }), &dev).await;
    assert!(
        dlq.contains("no runs") && dlq.contains("0 dead message(s)"),
        "{dlq}"
    );
}

#[tokio::test]
async fn the_cli_says_what_is_wrong() {
    let (dev, _stop) = serve().await;
    let unknown = execute(&Op::Runs(RunsCommand::Show { id: "nope".into() }), &dev)
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("404"), "{unknown}");
    let nowhere = Target {
        stack: None,
        url: "http://127.0.0.1:9".into(),
        token: None,
        json: false,
    };
    let err = execute(&Op::Runs(RunsCommand::Show { id: "x".into() }), &nowhere)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot reach hookflow dev"),
        "{err:#}"
    );
    let bad = execute(
        &Op::Events(EventsCommand::Send {
            name: "a/b".into(),
            data: "{oops".into(),
            id: None,
        }),
        &dev,
    )
    .await
    .unwrap_err();
    assert!(bad.to_string().contains("--data"), "{bad}");
}
