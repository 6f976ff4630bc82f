use hookflow::Function;
use serde_yaml_ng::Value;

use super::*;

fn noop(id: &str) -> Function {
    Function::new(id).handler(|_ctx| async { Ok(()) })
}

/// A template with only the hand-written frame around the two regions.
fn frame() -> String {
    format!(
        "Resources:\n  HookflowTable:\n    Type: AWS::DynamoDB::Table\n  {BEGIN}\n  {END}\n\nOutputs:\n  TableName:\n    Value: x\n  {BEGIN}\n  {END}\n"
    )
}

/// The generated resources parsed as YAML (CloudFormation tags kept as tags).
fn resources(functions: &[Function]) -> serde_yaml_ng::Mapping {
    let (text, _) = generated(functions).unwrap();
    let value: Value = serde_yaml_ng::from_str(&text).unwrap();
    value.as_mapping().unwrap().clone()
}

fn get<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[*key])
}

fn tagged(value: &Value) -> String {
    match value {
        Value::Tagged(t) => format!("{} {}", t.tag, t.value.as_str().unwrap_or_default()),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn a_workflow_gets_its_queue_lambda_role_alarms_and_exactly_its_settings() {
    let pay = noop("pay-order")
        .on_event("order/placed")
        .reads_env(["STRIPE_API_KEY", "EMAIL_FROM", "STRIPE_API_KEY"])
        .on_failure(|_ctx| async { Ok(()) });
    let registry = hookflow::Registry::new([pay]).unwrap();
    let functions: Vec<Function> = registry.iter().map(|f| (**f).clone()).collect();
    let r = Value::Mapping(resources(&functions));

    let queue = &r["PayOrderQueue"];
    assert_eq!(
        tagged(get(queue, &["Properties", "QueueName"])),
        "!Sub ${AWS::StackName}-pay-order"
    );
    assert_eq!(
        get(queue, &["Properties", "VisibilityTimeout"]).as_u64(),
        Some(1800),
        "6 x 300 s"
    );
    assert_eq!(
        tagged(get(
            queue,
            &["Properties", "RedrivePolicy", "deadLetterTargetArn"]
        )),
        "!GetAtt PayOrderDlq.Arn"
    );
    let lambda = &r["PayOrderFunction"];
    assert_eq!(
        get(lambda, &["Metadata", "BuildProperties", "Binary"]).as_str(),
        Some("bootstrap")
    );
    assert_eq!(
        get(lambda, &["Properties", "CodeUri"]).as_str(),
        Some("functions/lambda")
    );
    let vars = get(lambda, &["Properties", "Environment", "Variables"])
        .as_mapping()
        .unwrap();
    let names: Vec<&str> = vars.keys().filter_map(Value::as_str).collect();
    assert_eq!(
        names,
        [
            "HOOKFLOW_ROLE",
            "HOOKFLOW_FUNCTION_ID",
            "STRIPE_API_KEY",
            "EMAIL_FROM"
        ],
        "declared settings once each, nothing else"
    );
    assert_eq!(
        tagged(&vars[&Value::from("STRIPE_API_KEY")]),
        "!Ref StripeApiKey"
    );
    assert_eq!(
        vars[&Value::from("HOOKFLOW_FUNCTION_ID")].as_str(),
        Some("pay-order")
    );
    assert_eq!(
        tagged(get(
            lambda,
            &["Properties", "Events", "Queue", "Properties", "Queue"]
        )),
        "!GetAtt PayOrderQueue.Arn"
    );
    assert!(r["PayOrderRole"].is_mapping());
    assert!(r["PayOrderLogGroup"].is_mapping());
    assert!(r["PayOrderDlqAlarm"].is_mapping());
    assert!(r["PayOrderErrorsAlarm"].is_mapping());
    let age = &r["PayOrderQueueAgeAlarm"];
    assert_eq!(
        get(age, &["Properties", "MetricName"]).as_str(),
        Some("ApproximateAgeOfOldestMessage")
    );
    assert_eq!(
        tagged(get(age, &["Properties", "Threshold"])),
        "!Ref OldestMessageAlarmSeconds"
    );
    assert!(r["RouterQueueAgeAlarm"].is_mapping());
    let dashboard = tagged(get(&r["Dashboard"], &["Properties", "DashboardBody"]));
    for metric in [
        r#"["Hookflow/${AWS::StackName}", "RunsFailed", "Function", "pay-order""#,
        r#"["Hookflow/${AWS::StackName}", "RunsCompleted", "Function", "pay-order""#,
        r#"["Hookflow/${AWS::StackName}", "StepDuration", {"stat": "p99""#,
    ] {
        assert!(dashboard.contains(metric), "{metric} in {dashboard}");
    }
    let mapping = resources(&functions);
    let ids: Vec<&str> = mapping.keys().filter_map(Value::as_str).collect();
    assert!(
        !ids.iter().any(|id| id.contains("OnFailure")),
        "the on_failure handler runs in its parent's Lambda: {ids:?}"
    );
    assert!(r["RouterFunction"].is_mapping() && r["Dashboard"].is_mapping());
}

#[test]
fn every_webhook_provider_gets_its_lambda_route_and_secrets() {
    let r = Value::Mapping(resources(&[]));
    for provider in Provider::ALL {
        let name = format!("Webhook{}Function", render::logical(provider.as_str()));
        let lambda = &r[name.as_str()];
        let vars = get(lambda, &["Properties", "Environment", "Variables"]);
        assert_eq!(vars["HOOKFLOW_ROLE"].as_str(), Some("webhook"));
        assert_eq!(vars["HOOKFLOW_PROVIDER"].as_str(), Some(provider.as_str()));
        for var in WebhookConfig::env_vars(provider) {
            assert_eq!(
                tagged(&vars[*var]),
                format!("!Ref {}", render::parameter(var)),
                "{var}"
            );
        }
        let route = get(lambda, &["Properties", "Events", "Webhook", "Properties"]);
        assert_eq!(
            route["Path"].as_str(),
            Some(format!("/webhooks/{provider}").as_str())
        );
    }
}

#[test]
fn a_cron_whose_zone_is_a_setting_takes_it_from_the_parameter() {
    let sync = noop("nightly-sync").on_cron_in_setting("0 2 * * *", "UTC", "SHOP_TIME_ZONE");
    sync.validate().unwrap();
    let r = Value::Mapping(resources(&[sync]));
    let schedule = &r["NightlySyncSchedule"]["Properties"];
    assert_eq!(
        tagged(&schedule["ScheduleExpressionTimezone"]),
        "!Ref ShopTimeZone"
    );
    let lambda = &r["NightlySyncFunction"]["Properties"];
    assert_eq!(
        tagged(&lambda["Environment"]["Variables"]["SHOP_TIME_ZONE"]),
        "!Ref ShopTimeZone"
    );
}

#[test]
fn a_cron_becomes_a_schedule_in_its_time_zone() {
    let digest = noop("weekly-digest").on_cron_in("0 9 * * MON", "Europe/Paris");
    digest.validate().unwrap();
    let r = Value::Mapping(resources(&[digest]));
    let schedule = &r["WeeklyDigestSchedule"]["Properties"];
    assert_eq!(
        schedule["ScheduleExpression"].as_str(),
        Some("cron(0 9 ? * MON *)")
    );
    assert_eq!(
        schedule["ScheduleExpressionTimezone"].as_str(),
        Some("Europe/Paris")
    );
    assert_eq!(
        tagged(&schedule["Target"]["Arn"]),
        "!GetAtt RouterQueue.Arn"
    );
    let input = schedule["Target"]["Input"].as_str().unwrap();
    let envelope: hookflow::Envelope =
        serde_json::from_str(&input.replace(SCHEDULED_TIME, "2027-01-04T08:00:00Z")).unwrap();
    assert_eq!(
        envelope.message,
        hookflow::Message::Cron {
            function_id: "weekly-digest".into(),
            at: 1_799_049_600_000
        }
    );
}

#[test]
fn a_cron_scheduler_cannot_express_is_refused_with_the_fix() {
    let f = noop("nightly").on_cron("0 2 * * 1");
    let err = generated(&[f]).unwrap_err().to_string();
    assert!(
        err.contains("`nightly`") && err.contains("`0 2 * * 1`") && err.contains("MON-SUN"),
        "{err}"
    );
    assert_eq!(aws_cron("0 3 * * *").as_deref(), Some("cron(0 3 * * ? *)"));
    assert_eq!(
        aws_cron("0 0 4 1 * *").as_deref(),
        Some("cron(0 4 1 * ? *)")
    );
    assert_eq!(aws_cron("0 4 1 * MON"), None, "both day fields set");
}

#[test]
fn generate_rewrites_only_the_regions_and_check_names_the_first_difference() {
    let functions = [noop("hello").on_event("a")];
    let text = generate(&frame(), &functions).unwrap();
    assert!(
        text.starts_with("Resources:\n  HookflowTable:\n"),
        "hand-written part kept"
    );
    assert!(text.contains("  HelloFunction:\n"));
    assert!(text.contains("  HelloQueueName:\n"));
    assert_eq!(generate(&text, &functions).unwrap(), text, "idempotent");
    check(&text, &functions).unwrap();
    let stale = text.replace("Timeout: 300", "Timeout: 30");
    let err = check(&stale, &functions).unwrap_err();
    assert!(matches!(err, TemplateError::OutOfDate { .. }), "{err}");
    assert!(err.to_string().contains("template generate"), "{err}");
    let changed = [noop("hello").on_event("a"), noop("bye").on_event("b")];
    assert!(
        check(&text, &changed).is_err(),
        "a new function needs a regenerated template"
    );
    let err = generate("Resources:\n  X: 1\n", &functions).unwrap_err();
    assert_eq!(err, TemplateError::Markers("Resources"));
}
