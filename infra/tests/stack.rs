//! The operator commands against a deployed stack (`--stack NAME`), on moto:
//! the stack's outputs come from CloudFormation, the runs from its table,
//! the dead letters from its queues; the stack's Lambdas are played by the
//! test environment's handler (it routes events and runs `hello-world`).

use std::time::Duration;

use hookflow_aws::testing::{AwsTestEnv, Moto};
use hookflow_cli::ops::{BulkArgs, DlqCommand, EventsCommand, Op, RunsCommand, execute_on_stack};
use hookflow_cli::stack::Stack;
use serde_json::{Value, json};

/// Creates the CloudFormation stack `env`'s resources stand for: its
/// outputs name them, as `template.yaml`'s do.
async fn deploy(env: &AwsTestEnv, sdk: &aws_config::SdkConfig) -> String {
    let config = env.store().config();
    let name = config.queue_prefix.clone();
    let template = json!({
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "TableName": {"Value": config.table},
            "BucketName": {"Value": config.bucket},
            "SchedulerGroupName": {"Value": config.scheduler_group},
            "SchedulerRoleArn": {"Value": config.scheduler_role_arn},
        }
    });
    aws_sdk_cloudformation::Client::new(sdk)
        .create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    name
}

async fn json_of(op: Op, stack: &Stack) -> Value {
    let yes = |_: &str| Ok(true);
    let out = execute_on_stack(&op, stack, true, &yes).await.unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn text_of(op: Op, stack: &Stack) -> String {
    let yes = |_: &str| Ok(true);
    execute_on_stack(&op, stack, false, &yes).await.unwrap()
}

#[tokio::test]
async fn the_cli_lists_cancels_replays_and_redrives_on_a_deployed_stack() {
    let env = AwsTestEnv::new(vec![hello_world::function()]).await;
    env.clock.set(chrono::Utc::now().timestamp_millis());
    let sdk = Moto::shared().sdk_config().await;
    let name = deploy(&env, &sdk).await;
    let stack = Stack::connect(&sdk, &name).await.unwrap();

    // `events send`: stored in the stack's table, routed by its router.
    let sent = json_of(
        Op::Events(EventsCommand::Send {
            name: "demo/hello".into(),
            data: r#"{"name": "Ada", "delay_secs": 600}"#.into(),
            id: Some("evt-1".into()),
        }),
        &stack,
    )
    .await;
    let run_id = sent["run_ids"][0].as_str().unwrap().to_owned();
    env.settle().await;

    // `runs list` and `runs show`: the run sleeps after its first step.
    let listed = json_of(
        Op::Runs(RunsCommand::List {
            function: Some("hello-world".into()),
            status: None,
            limit: 10,
        }),
        &stack,
    )
    .await;
    assert_eq!(listed["runs"][0]["id"], run_id.as_str());
    assert_eq!(listed["runs"][0]["status"], "sleeping");
    let shown = text_of(Op::Runs(RunsCommand::Show { id: run_id.clone() }), &stack).await;
    assert!(
        shown.contains("compose") && shown.contains("pause"),
        "{shown}"
    );

    // `runs cancel`: the function's Lambda applies it while the CLI waits.
    let cancel = json_of(Op::Runs(RunsCommand::Cancel { id: run_id.clone() }), &stack);
    let lambda = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        env.settle().await;
    };
    let (cancelled, ()) = tokio::join!(cancel, lambda);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    // `replay --status cancelled`: a dry run counts, then one replay.
    let args = BulkArgs {
        function: Some("hello-world".into()),
        status: Some("cancelled".into()),
        since: None,
        until: None,
        condition: None,
        dry_run: false,
        yes: true,
    };
    let replayed = json_of(Op::Replay(args.clone()), &stack).await;
    assert_eq!(replayed["acted"].as_array().unwrap().len(), 1, "{replayed}");
    env.settle().await;
    let again = json_of(Op::Replay(args), &stack).await;
    assert_eq!(
        again["acted"].as_array().unwrap().len(),
        0,
        "one replay per run: {again}"
    );
    let event = json_of(
        Op::Events(EventsCommand::Show { id: "evt-1".into() }),
        &stack,
    )
    .await;
    let runs = event["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "the run and its replay: {event}");
    assert!(runs.iter().any(|r| r["replay_of"] == run_id.as_str()));

    // `dlq list` / `dlq redrive`: a message in the function's dead-letter
    // queue is counted, then moved back to its queue.
    let sqs = &env.store().clients().sqs;
    let dlq = sqs
        .get_queue_url()
        .queue_name(format!("{name}-hello-world-dlq"))
        .send()
        .await
        .unwrap();
    sqs.send_message()
        .queue_url(dlq.queue_url().unwrap())
        .message_body(r#"{"target": {"function": "hello-world"}, "message": {"type": "resume", "run_id": "gone"}}"#)
        .send()
        .await
        .unwrap();
    let dead = json_of(Op::Dlq(DlqCommand::List { function: None }), &stack).await;
    assert_eq!(dead["dead_letter_count"], 1, "{dead}");
    let listed = text_of(Op::Dlq(DlqCommand::List { function: None }), &stack).await;
    assert!(listed.contains("1 dead message(s)"), "{listed}");
    let no = |_: &str| Ok(false);
    let declined = execute_on_stack(
        &Op::Dlq(DlqCommand::Redrive {
            function: None,
            yes: false,
        }),
        &stack,
        false,
        &no,
    )
    .await
    .unwrap();
    assert_eq!(declined, "nothing done", "it asks first");
    let redriven = json_of(
        Op::Dlq(DlqCommand::Redrive {
            function: None,
            yes: false,
        }),
        &stack,
    )
    .await;
    assert_eq!(redriven["redriven"], 1, "{redriven}");
    let dead = json_of(Op::Dlq(DlqCommand::List { function: None }), &stack).await;
    assert_eq!(dead["dead_letter_count"], 0, "{dead}");
    let queue = sqs
        .get_queue_url()
        .queue_name(format!("{name}-hello-world"))
        .send()
        .await
        .unwrap();
    let back = sqs
        .receive_message()
        .queue_url(queue.queue_url().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        back.messages()[0].body().unwrap().contains("gone"),
        "the message is back on its queue"
    );

    // An unknown stack says so.
    let err = Stack::connect(&sdk, "no-such-stack").await.err().unwrap();
    assert!(format!("{err:#}").contains("no-such-stack"), "{err:#}");
}
