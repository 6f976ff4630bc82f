//! The check against small templates written here: a complete one passes, and
//! each omission is reported precisely.

use std::fmt::Write as _;

use hookflow::Function;
use hookflow_webhooks::{Provider, WebhookConfig};

use super::*;

/// A minimal deployable template: router, every webhook, one Lambda + queue +
/// DLQ per workflow id, and `schedules` appended verbatim.
fn template(workflows: &[&str], schedules: &str) -> String {
    let mut t = String::from(
        "Globals:\n  Function:\n    Timeout: 10\n    Environment:\n      Variables:\n",
    );
    for var in COMMON_ENV {
        writeln!(t, "        {var}: x").unwrap();
    }
    t.push_str("Resources:\n");
    let consumer = |t: &mut String, logical: &str, name: &str, env: &str| {
        write!(
            t,
            "  {logical}Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub ${{AWS::StackName}}-{name}\n      VisibilityTimeout: 360\n      RedrivePolicy: {{deadLetterTargetArn: !GetAtt {logical}Dlq.Arn, maxReceiveCount: 5}}\n\
             \x20 {logical}Dlq:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub ${{AWS::StackName}}-{name}-dlq\n\
             \x20 {logical}Function:\n    Type: AWS::Serverless::Function\n    Metadata: {{BuildMethod: rust-cargolambda, BuildProperties: {{Binary: {name}}}}}\n    Properties:\n      Timeout: 60\n      Environment: {{Variables: {{{env}}}}}\n      Events:\n        Queue:\n          Type: SQS\n          Properties: {{Queue: !GetAtt {logical}Queue.Arn, BatchSize: 10, FunctionResponseTypes: [ReportBatchItemFailures]}}\n"
        )
        .unwrap();
    };
    consumer(&mut t, "Router", "router", "");
    for (n, id) in workflows.iter().enumerate() {
        consumer(
            &mut t,
            &format!("Workflow{n}"),
            id,
            &format!("HOOKFLOW_FUNCTION_ID: {id}"),
        );
    }
    for provider in Provider::ALL {
        let env: Vec<String> = WebhookConfig::env_vars(provider)
            .iter()
            .map(|v| format!("{v}: s"))
            .collect();
        write!(
            t,
            "  Webhook{provider}Function:\n    Type: AWS::Serverless::Function\n    Metadata: {{BuildProperties: {{Binary: webhook-{provider}}}}}\n    Properties:\n      Environment: {{Variables: {{{}}}}}\n      Events:\n        Webhook: {{Type: HttpApi, Properties: {{Method: POST, Path: /webhooks/{provider}}}}}\n",
            env.join(", ")
        )
        .unwrap();
    }
    t.push_str(schedules);
    t
}

fn function(id: &str) -> Function {
    Function::new(id).on_event("demo/event")
}

fn problems(text: &str, functions: &[Function]) -> Vec<Problem> {
    match check(text, functions) {
        Err(CheckError::Problems(problems)) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

const DAILY_SCHEDULE: &str = "  DailySchedule:\n    Type: AWS::Scheduler::Schedule\n    Properties:\n      ScheduleExpression: cron(0 9 * * ? *)\n      ScheduleExpressionTimezone: Europe/Paris\n      Target:\n        Arn: !GetAtt RouterQueue.Arn\n        Input: '{\"target\":{\"queue\":\"router\"},\"message\":{\"type\":\"cron\",\"function_id\":\"daily\",\"at\":\"<aws.scheduler.scheduled-time>\"},\"dedupe_key\":null}'\n";

fn daily() -> Function {
    Function::new("daily").on_cron_in("0 9 * * *", "Europe/Paris")
}

#[test]
fn a_complete_template_passes() {
    // GIVEN a template with a Lambda, queue and DLQ for each function (its
    // on-failure function runs in its Lambda) WHEN checked THEN it passes.
    let functions = [
        function("pay"),
        function("pay-on-failure"),
        function("ship"),
    ];
    let summary = check(&template(&["pay", "ship"], ""), &functions).unwrap();
    assert_eq!(
        summary,
        Summary {
            functions: 2,
            webhooks: Provider::ALL.len(),
            schedules: 0
        }
    );
}

#[test]
fn a_function_without_its_queue_is_reported() {
    let text =
        template(&["pay"], "").replace("${AWS::StackName}-pay\n", "${AWS::StackName}-payments\n");
    assert_eq!(
        problems(&text, &[function("pay")]),
        [Problem::MissingQueue {
            queue: "pay".into()
        }]
    );
}

#[test]
fn a_function_without_a_lambda_is_reported() {
    let found = problems(&template(&[], ""), &[function("pay")]);
    assert_eq!(
        found,
        [Problem::MissingLambda {
            function: "pay".into()
        }]
    );
    assert!(found[0].to_string().contains("HOOKFLOW_FUNCTION_ID: pay"));
}

#[test]
fn a_lambda_for_an_unknown_function_is_reported() {
    let found = problems(&template(&["pay", "ghost"], ""), &[function("pay")]);
    assert_eq!(
        found,
        [Problem::UnknownFunction {
            lambda: "Workflow1Function".into(),
            function: "ghost".into()
        }]
    );
}

#[test]
fn an_on_failure_function_may_not_have_its_own_lambda() {
    let functions = [function("pay"), function("pay-on-failure")];
    let found = problems(&template(&["pay", "pay-on-failure"], ""), &functions);
    assert_eq!(
        found,
        [Problem::UnknownFunction {
            lambda: "Workflow1Function".into(),
            function: "pay-on-failure".into()
        }]
    );
}

#[test]
fn a_queue_without_its_dead_letter_queue_is_reported() {
    let text =
        template(&["pay"], "").replace("${AWS::StackName}-pay-dlq", "${AWS::StackName}-elsewhere");
    assert_eq!(
        problems(&text, &[function("pay")]),
        [Problem::MissingDeadLetter {
            queue: "pay".into()
        }]
    );
}

#[test]
fn miswired_consumers_are_reported() {
    // GIVEN the workflow Lambda reads the router queue, without partial batch
    // failures, and its queue's visibility is below 6 x its timeout.
    let text = template(&["pay"], "")
        .replace("Queue: !GetAtt Workflow0Queue.Arn, BatchSize: 10, FunctionResponseTypes: [ReportBatchItemFailures]", "Queue: !GetAtt RouterQueue.Arn")
        .replace("Timeout: 60\n      Environment: {Variables: {HOOKFLOW_FUNCTION_ID", "Timeout: 61\n      Environment: {Variables: {HOOKFLOW_FUNCTION_ID");
    let found = problems(&text, &[function("pay")]);
    assert_eq!(
        found,
        [
            Problem::NoBatchItemFailures {
                lambda: "Workflow0Function".into(),
                event: "Queue".into()
            },
            Problem::NotConsuming {
                lambda: "Workflow0Function".into(),
                queue: "pay".into()
            },
            Problem::VisibilityTooShort {
                queue: "pay".into(),
                visibility_secs: 360,
                lambda: "Workflow0Function".into(),
                timeout_secs: 61
            },
        ]
    );
}

#[test]
fn webhook_providers_need_their_lambda_route_and_secrets() {
    let text = template(&[], "")
        .replace("Binary: webhook-stripe", "Binary: stripe")
        .replace("Path: /webhooks/clerk", "Path: /clerk")
        .replace("POSTMARK_WEBHOOK_PASSWORD: s", "OTHER: s");
    let found = problems(&text, &[]);
    assert_eq!(
        found,
        [
            Problem::MissingWebhook {
                provider: "stripe".into()
            },
            Problem::MissingRoute {
                lambda: "WebhookclerkFunction".into(),
                path: "/webhooks/clerk".into()
            },
            Problem::MissingEnv {
                lambda: "WebhookpostmarkFunction".into(),
                var: "POSTMARK_WEBHOOK_PASSWORD".into()
            },
        ]
    );
}

#[test]
fn lambdas_need_the_engine_environment() {
    let text = template(&[], "").replace("        HOOKFLOW_TABLE: x\n", "");
    let found = problems(&text, &[]);
    assert_eq!(found.len(), 1 + Provider::ALL.len());
    assert!(
        found
            .iter()
            .all(|p| matches!(p, Problem::MissingEnv { var, .. } if var == "HOOKFLOW_TABLE"))
    );
}

#[test]
fn cron_functions_need_their_schedule() {
    let functions = [daily()];
    assert_eq!(
        check(&template(&["daily"], DAILY_SCHEDULE), &functions)
            .unwrap()
            .schedules,
        1
    );

    let found = problems(&template(&["daily"], ""), &functions);
    assert_eq!(
        found,
        [Problem::MissingSchedule {
            function: "daily".into(),
            cron: "0 9 * * *".into(),
            timezone: "Europe/Paris".into()
        }]
    );
    assert!(
        found[0].to_string().contains("cron(0 9 * * ? *)"),
        "{}",
        found[0]
    );

    // A schedule in another time zone or at another time does not count.
    let utc = DAILY_SCHEDULE.replace("Europe/Paris", "UTC");
    assert!(matches!(
        problems(&template(&["daily"], &utc), &functions)[..],
        [Problem::MissingSchedule { .. }]
    ));
    let later = DAILY_SCHEDULE.replace("cron(0 9", "cron(0 10");
    assert!(matches!(
        problems(&template(&["daily"], &later), &functions)[..],
        [Problem::MissingSchedule { .. }]
    ));
}

#[test]
fn schedules_must_send_cron_messages_for_cron_functions_to_the_router() {
    let functions = [daily(), function("pay")];
    let text = template(
        &["daily", "pay"],
        &DAILY_SCHEDULE.replace("\"daily\"", "\"pay\""),
    );
    let found = problems(&text, &functions);
    assert!(
        matches!(&found[0], Problem::BadSchedule { reason, .. } if reason.contains("`pay` is not a cron-triggered"))
    );

    let elsewhere = DAILY_SCHEDULE.replace("RouterQueue.Arn", "Workflow0Queue.Arn");
    let found = problems(&template(&["daily"], &elsewhere), &[daily()]);
    assert!(
        matches!(&found[..], [Problem::BadSchedule { reason, .. }] if reason.contains("Target.Arn"))
    );

    let start = DAILY_SCHEDULE.replace("\"type\":\"cron\"", "\"type\":\"start\"");
    let found = problems(&template(&["daily"], &start), &[daily()]);
    assert!(
        matches!(&found[0], Problem::BadSchedule { reason, .. } if reason.contains("envelope"))
    );
}

#[test]
fn reserved_function_ids_are_reported() {
    let found = problems(&template(&[], ""), &[function("scheduler")]);
    assert_eq!(
        found[0],
        Problem::ReservedId {
            function: "scheduler".into()
        }
    );
}

#[test]
fn unreadable_templates_are_errors_not_panics() {
    assert!(matches!(
        check("Resources: [", &[]),
        Err(CheckError::Parse(_))
    ));
}

#[test]
fn crons_translate_to_scheduler_expressions_when_unambiguous() {
    assert_eq!(
        aws_cron("*/5 * * * *").as_deref(),
        Some("cron(*/5 * * * ? *)")
    );
    assert_eq!(
        aws_cron("0 0 9 * * MON-FRI").as_deref(),
        Some("cron(0 9 ? * MON-FRI *)")
    );
    assert_eq!(aws_cron("0 9 1 * *").as_deref(), Some("cron(0 9 1 * ? *)"));
    assert_eq!(aws_cron("0 9 * * 1"), None, "numeric week days differ");
    assert_eq!(aws_cron("30 0 9 * * *"), None, "Scheduler has no seconds");
    assert_eq!(
        aws_cron("0 9 1 * MON"),
        None,
        "day of month and week both set"
    );
}
