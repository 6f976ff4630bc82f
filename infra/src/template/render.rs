//! The text of the generated resources, one function per resource kind. Every
//! Lambda runs the one `bootstrap` binary built from `functions/lambda`; its
//! environment (`HOOKFLOW_ROLE`, ...) says what it is.

use std::fmt::Write;

use super::{Cron, Deployment, Workflow};

/// Every Lambda runs this binary, built once.
const CODE_URI: &str = "functions/lambda";
/// Seconds a webhook Lambda may run.
pub(super) const WEBHOOK_TIMEOUT: u32 = 10;
/// Seconds the router Lambda may run.
pub(super) const ROUTER_TIMEOUT: u32 = 60;
/// Seconds a workflow Lambda may run.
pub(super) const WORKFLOW_TIMEOUT: u32 = 300;
/// A queue's visibility timeout is this many times its consumer's timeout
/// (AWS's advice for Lambda event sources).
pub(super) const VISIBILITY_FACTOR: u32 = 6;
/// Receives before a message goes to its dead-letter queue.
const MAX_RECEIVES: u32 = 5;

/// `STRIPE_API_KEY` → `StripeApiKey`: the template parameter of a variable.
pub(super) fn parameter(var: &str) -> String {
    var.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let lower = part.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// `checkout-side-effects` → `CheckoutSideEffects`: a logical id.
pub(super) fn logical(id: &str) -> String {
    parameter(&id.replace('-', "_"))
}

fn section(out: &mut String, title: &str) {
    let dashes = "-".repeat(70usize.saturating_sub(title.len()));
    let _ = writeln!(out, "  # {dashes} {title}");
}

fn queue(out: &mut String, name: &str, id: &str, what: &str, timeout: u32) {
    let visibility = timeout * VISIBILITY_FACTOR;
    let _ = write!(
        out,
        "  {name}Queue: # {what}; {VISIBILITY_FACTOR} x its {timeout} s timeout
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub ${{AWS::StackName}}-{id}
      VisibilityTimeout: {visibility}
      SqsManagedSseEnabled: true
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt {name}Dlq.Arn
        maxReceiveCount: {MAX_RECEIVES}
  {name}Dlq:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub ${{AWS::StackName}}-{id}-dlq
      MessageRetentionPeriod: 1209600
      SqsManagedSseEnabled: true
"
    );
}

/// The environment block of a Lambda: `(variable, value)` pairs.
fn environment(out: &mut String, vars: &[(String, String)]) {
    let _ = writeln!(out, "      Environment:\n        Variables:");
    for (var, value) in vars {
        let _ = writeln!(out, "          {var}: {value}");
    }
}

fn secrets(vars: &[String]) -> Vec<(String, String)> {
    vars.iter()
        .map(|var| (var.clone(), format!("!Ref {}", parameter(var))))
        .collect()
}

fn function_head(out: &mut String, name: &str, description: &str, timeout: u32) {
    let _ = write!(
        out,
        "  {name}Function:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: bootstrap
    Properties:
      Description: {description}
      CodeUri: {CODE_URI}
      Timeout: {timeout}
      Role: !GetAtt {name}Role.Arn
      LoggingConfig:
        LogGroup: !Ref {name}LogGroup
"
    );
}

fn queue_events(out: &mut String, name: &str) {
    let _ = write!(
        out,
        "      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt {name}Queue.Arn
            BatchSize: 10
            FunctionResponseTypes: [ReportBatchItemFailures]
"
    );
}

/// The Lambda's role: a shared managed policy plus its own log group and,
/// for queue consumers, its own queue.
fn role(out: &mut String, name: &str, policy: &str, consumes_queue: bool) {
    let _ = write!(
        out,
        "  {name}Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: \"2012-10-17\"
        Statement:
          - Effect: Allow
            Principal: {{Service: lambda.amazonaws.com}}
            Action: sts:AssumeRole
      ManagedPolicyArns:
        - !Ref {policy}
      Policies:
        - PolicyName: own-resources
          PolicyDocument:
            Version: \"2012-10-17\"
            Statement:
              - Effect: Allow
                Action:
                  - logs:CreateLogStream
                  - logs:PutLogEvents
                Resource: !GetAtt {name}LogGroup.Arn
"
    );
    if consumes_queue {
        let _ = write!(
            out,
            "              - Effect: Allow
                Action:
                  - sqs:ReceiveMessage
                  - sqs:DeleteMessage
                  - sqs:GetQueueAttributes
                  - sqs:ChangeMessageVisibility
                Resource: !GetAtt {name}Queue.Arn
"
        );
    }
}

fn log_group(out: &mut String, name: &str, id: &str) {
    let _ = write!(
        out,
        "  {name}LogGroup:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub /aws/lambda/${{AWS::StackName}}/{id}
      RetentionInDays: !Ref LogRetentionInDays
"
    );
}

fn alarm(
    out: &mut String,
    name: &str,
    description: &str,
    metric: (&str, &str, &str, &str),
    threshold: &str,
) {
    let (namespace, metric_name, dimension, value) = metric;
    let statistic = if namespace == "AWS/SQS" {
        "Maximum"
    } else {
        "Sum"
    };
    let _ = write!(
        out,
        "  {name}:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: !Sub ${{AWS::StackName}} {description}
      Namespace: {namespace}
      MetricName: {metric_name}
      Dimensions:
        - Name: {dimension}
          Value: {value}
      Statistic: {statistic}
      Period: 60
      EvaluationPeriods: 1
      Threshold: {threshold}
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: [!Ref AlarmTopic]
      OKActions: [!Ref AlarmTopic]
"
    );
}

fn alarms(out: &mut String, name: &str, id: &str, queue: bool) {
    if queue {
        alarm(
            out,
            &format!("{name}DlqAlarm"),
            &format!("{id} dead-letter queue has messages (inspect, fix, then redrive)"),
            (
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                &format!("!GetAtt {name}Dlq.QueueName"),
            ),
            "0",
        );
        alarm(
            out,
            &format!("{name}QueueAgeAlarm"),
            &format!(
                "{id} queue's oldest message has waited over ${{OldestMessageAlarmSeconds}} s (stuck, or slower than its load)"
            ),
            (
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                "QueueName",
                &format!("!GetAtt {name}Queue.QueueName"),
            ),
            "!Ref OldestMessageAlarmSeconds",
        );
    }
    alarm(
        out,
        &format!("{name}ErrorsAlarm"),
        &format!("{id} Lambda reported errors"),
        (
            "AWS/Lambda",
            "Errors",
            "FunctionName",
            &format!("!Ref {name}Function"),
        ),
        "0",
    );
}

pub(super) fn router(out: &mut String) {
    section(out, "router");
    queue(out, "Router", "router", "events to route", ROUTER_TIMEOUT);
    function_head(
        out,
        "Router",
        "Routes stored events - waiters, cancel_on, triggers, new runs",
        ROUTER_TIMEOUT,
    );
    environment(out, &[("HOOKFLOW_ROLE".into(), "router".into())]);
    queue_events(out, "Router");
    role(out, "Router", "EnginePolicy", true);
    log_group(out, "Router", "router");
    alarms(out, "Router", "router", true);
}

pub(super) fn webhook(out: &mut String, provider: &str, secret_vars: &[String]) {
    let name = format!("Webhook{}", logical(provider));
    let id = format!("webhook-{provider}");
    section(out, &id);
    function_head(
        out,
        &name,
        &format!("Verifies and stores {provider} webhooks, then hands them to the router"),
        WEBHOOK_TIMEOUT,
    );
    let mut vars = vec![
        ("HOOKFLOW_ROLE".to_owned(), "webhook".to_owned()),
        ("HOOKFLOW_PROVIDER".to_owned(), provider.to_owned()),
    ];
    vars.extend(secrets(secret_vars));
    environment(out, &vars);
    let _ = write!(
        out,
        "      Events:
        Webhook:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Method: POST
            Path: /webhooks/{provider}
"
    );
    role(out, &name, "WebhookPolicy", false);
    log_group(out, &name, &id);
    alarms(out, &name, &id, false);
}

pub(super) fn workflow(out: &mut String, workflow: &Workflow) {
    let (name, id) = (&workflow.logical, &workflow.id);
    section(out, id);
    queue(out, name, id, &format!("runs of `{id}`"), WORKFLOW_TIMEOUT);
    function_head(
        out,
        name,
        &format!("Runs the {id} workflow"),
        WORKFLOW_TIMEOUT,
    );
    let mut vars = vec![
        ("HOOKFLOW_ROLE".to_owned(), "worker".to_owned()),
        ("HOOKFLOW_FUNCTION_ID".to_owned(), id.clone()),
    ];
    vars.extend(secrets(&workflow.settings));
    environment(out, &vars);
    queue_events(out, name);
    role(out, name, "EnginePolicy", true);
    log_group(out, name, id);
    alarms(out, name, id, true);
    for (i, cron) in workflow.crons.iter().enumerate() {
        schedule(out, workflow, i, cron);
    }
}

fn schedule(out: &mut String, workflow: &Workflow, index: usize, cron: &Cron) {
    let suffix = if index == 0 {
        String::new()
    } else {
        (index + 1).to_string()
    };
    let _ = write!(
        out,
        "  {name}Schedule{suffix}: # `{source}` in {zone}
    Type: AWS::Scheduler::Schedule
    Properties:
      GroupName: !Ref SchedulerGroup
      ScheduleExpression: {expression}
      ScheduleExpressionTimezone: {tz}
      FlexibleTimeWindow: {{Mode: \"OFF\"}}
      Target:
        Arn: !GetAtt RouterQueue.Arn
        RoleArn: !GetAtt SchedulerRole.Arn
        DeadLetterConfig: {{Arn: !GetAtt SchedulerDlq.Arn}}
        RetryPolicy: {{MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 3600}}
        Input: {input}
",
        name = workflow.logical,
        source = cron.source,
        tz = cron.timezone_setting.as_deref().map_or_else(
            || cron.timezone.clone(),
            |var| format!("!Ref {}", parameter(var))
        ),
        expression = cron.expression,
        input = super::cron_input(&workflow.id),
        zone = cron.timezone_setting.as_deref().unwrap_or(&cron.timezone),
    );
}

/// The dashboard: queue depths and ages, DLQs, the API, Lambda health, the table.
pub(super) fn dashboard(out: &mut String, deployment: &Deployment) {
    section(out, "dashboard");
    let queues: Vec<(String, String)> = std::iter::once(("Router".to_owned(), "router".to_owned()))
        .chain(
            deployment
                .workflows
                .iter()
                .map(|w| (w.logical.clone(), w.id.clone())),
        )
        .collect();
    let lambdas: Vec<(String, String)> = deployment
        .providers
        .iter()
        .map(|(p, _)| (format!("Webhook{}", logical(p)), format!("webhook-{p}")))
        .chain(queues.iter().cloned())
        .collect();
    let lines =
        |metric: &str, items: &[(String, String)], value: &dyn Fn(&str) -> String, suffix: &str| {
            items
                .iter()
                .map(|(name, label)| {
                    format!(
                        "            [{metric}, \"{}\", {{\"label\": \"{label}{suffix}\"}}]",
                        value(name)
                    )
                })
                .collect::<Vec<_>>()
                .join(",\n")
        };
    let widget = |x: u32, y: u32, title: &str, stat: &str, metrics: String| {
        format!(
            "          {{\"type\": \"metric\", \"x\": {x}, \"y\": {y}, \"width\": 12, \"height\": 6, \"properties\": {{\"title\": \"{title}\", \"region\": \"${{AWS::Region}}\", \"view\": \"timeSeries\", \"stat\": \"{stat}\", \"period\": 60, \"metrics\": [\n{metrics}\n          ]}}}}"
        )
    };
    let queue_name = |name: &str| format!("${{{name}Queue.QueueName}}");
    let dlq_name = |name: &str| format!("${{{name}Dlq.QueueName}}");
    let function = |name: &str| format!("${{{name}Function}}");
    let table = |metrics: &[&str]| {
        metrics
            .iter()
            .map(|m| format!("            [\"AWS/DynamoDB\", \"{m}\", \"TableName\", \"${{HookflowTable}}\", {{\"label\": \"{m}\"}}]"))
            .collect::<Vec<_>>()
            .join(",\n")
    };
    let api = ["Count", "4xx", "5xx"]
        .iter()
        .map(|m| format!("            [\"AWS/ApiGateway\", \"{m}\", \"ApiId\", \"${{HttpApi}}\", {{\"label\": \"{m}\"}}]"))
        .collect::<Vec<_>>()
        .join(",\n");
    let sqs = |m: &str| format!("\"AWS/SQS\", \"{m}\", \"QueueName\"");
    let lambda = |m: &str| format!("\"AWS/Lambda\", \"{m}\", \"FunctionName\"");
    // The engine's own metrics (EMF, namespace Hookflow/<stack>): per
    // workflow, and for the whole stack with percentiles.
    let hookflow = "\"Hookflow/${AWS::StackName}\"";
    let workflows: Vec<(String, String)> = deployment
        .workflows
        .iter()
        .map(|w| (w.id.clone(), w.id.clone()))
        .collect();
    let per_function = |m: &str| {
        lines(
            &format!("{hookflow}, \"{m}\", \"Function\""),
            &workflows,
            &|id: &str| id.to_owned(),
            "",
        )
    };
    let stack = |items: &[(&str, &str, &str)]| {
        items
            .iter()
            .map(|(m, stat, label)| {
                format!("            [{hookflow}, \"{m}\", {{\"stat\": \"{stat}\", \"label\": \"{label}\"}}]")
            })
            .collect::<Vec<_>>()
            .join(",\n")
    };
    let widgets = [
        widget(
            0,
            0,
            "Runs (all functions)",
            "Sum",
            stack(&[
                ("RunsStarted", "Sum", "started"),
                ("RunsCompleted", "Sum", "completed"),
                ("RunsFailed", "Sum", "failed"),
                ("RunsCancelled", "Sum", "cancelled"),
            ]),
        ),
        widget(
            12,
            0,
            "Runs failed per function",
            "Sum",
            per_function("RunsFailed"),
        ),
        widget(
            0,
            6,
            "Step duration and start delay (ms)",
            "p99",
            stack(&[
                ("StepDuration", "p50", "step p50"),
                ("StepDuration", "p99", "step p99"),
                ("StartDelay", "p50", "start delay p50"),
                ("StartDelay", "p99", "start delay p99"),
                ("QueueAge", "p99", "queue age p99"),
            ]),
        ),
        widget(
            12,
            6,
            "Runs completed per function",
            "Sum",
            per_function("RunsCompleted"),
        ),
        widget(
            0,
            12,
            "Queue depth (visible messages)",
            "Maximum",
            lines(
                &sqs("ApproximateNumberOfMessagesVisible"),
                &queues,
                &queue_name,
                "",
            ),
        ),
        widget(
            12,
            12,
            "Oldest message age (s)",
            "Maximum",
            lines(
                &sqs("ApproximateAgeOfOldestMessage"),
                &queues,
                &queue_name,
                "",
            ),
        ),
        widget(
            0,
            18,
            "Dead-letter queues (visible messages)",
            "Maximum",
            lines(
                &sqs("ApproximateNumberOfMessagesVisible"),
                &queues,
                &dlq_name,
                "-dlq",
            ),
        ),
        widget(12, 18, "Webhook API requests and errors", "Sum", api),
        widget(
            0,
            24,
            "Lambda invocations",
            "Sum",
            lines(&lambda("Invocations"), &lambdas, &function, ""),
        ),
        widget(
            12,
            24,
            "Lambda errors",
            "Sum",
            lines(&lambda("Errors"), &lambdas, &function, ""),
        ),
        widget(
            0,
            30,
            "Lambda duration p99 (ms)",
            "p99",
            lines(&lambda("Duration"), &lambdas, &function, ""),
        ),
        widget(
            12,
            30,
            "Lambda throttles",
            "Sum",
            lines(&lambda("Throttles"), &lambdas, &function, ""),
        ),
        widget(
            0,
            36,
            "DynamoDB consumed capacity",
            "Sum",
            table(&["ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits"]),
        ),
        widget(
            12,
            36,
            "DynamoDB throttles and errors",
            "Sum",
            table(&["ReadThrottleEvents", "WriteThrottleEvents", "SystemErrors"]),
        ),
    ];
    let _ = write!(
        out,
        "  Dashboard:
    Type: AWS::CloudWatch::Dashboard
    Properties:
      DashboardName: !Sub ${{AWS::StackName}}-hookflow
      DashboardBody: !Sub |
        {{\"widgets\": [
{}
        ]}}
",
        widgets.join(",\n")
    );
}

/// The outputs: each webhook's URL, each queue's and DLQ's name.
pub(super) fn outputs(out: &mut String, deployment: &Deployment) {
    for (provider, _) in &deployment.providers {
        let _ = write!(
            out,
            "  {name}WebhookUrl:
    Description: Endpoint to register with {provider}
    Value: !Sub https://${{HttpApi}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/webhooks/{provider}
",
            name = logical(provider)
        );
    }
    let names = std::iter::once("Router".to_owned())
        .chain(deployment.workflows.iter().map(|w| w.logical.clone()));
    for name in names {
        let _ = write!(
            out,
            "  {name}QueueName:
    Value: !GetAtt {name}Queue.QueueName
  {name}DlqName:
    Value: !GetAtt {name}Dlq.QueueName
"
        );
    }
}
