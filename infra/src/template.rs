//! `hookflow template check`: does `template.yaml` deploy what the registry and
//! the webhook crate need?
//!
//! The invariant it keeps: every workflow function in the registry (except the
//! `<id>-on-failure` functions, which run inside their parent's Lambda) has a
//! Lambda marked `HOOKFLOW_FUNCTION_ID: <id>` (binary `<id>`) consuming the queue
//! `${AWS::StackName}-<id>`, which has a dead-letter queue and a visibility
//! timeout of at least six times the Lambda's timeout; no Lambda names a function
//! the registry lacks; the router consumes `${AWS::StackName}-router`; every
//! webhook provider has its `webhook-<provider>` Lambda on `POST
//! /webhooks/<provider>` with its secrets in the environment; and every cron
//! trigger has an `AWS::Scheduler::Schedule` sending a `cron` message to the
//! router queue in the trigger's time zone.

mod model;

use std::fmt;
use std::path::Path;

use anyhow::Context;
use hookflow::function::{FAILURE_SUFFIX, Trigger};
use hookflow::{Envelope, Function, Message, Target};
use hookflow_webhooks::{Provider, WebhookConfig};

pub use model::{Lambda, ParseError, Queue, STACK_PREFIX, Schedule, Template};

/// The template `hookflow template check` reads by default.
pub const DEFAULT_TEMPLATE: &str = "template.yaml";
/// The variable naming a workflow Lambda's function.
pub const FUNCTION_ID_ENV: &str = "HOOKFLOW_FUNCTION_ID";
/// Variables every Lambda needs (from `Globals` or its own).
pub const COMMON_ENV: [&str; 6] = [
    "HOOKFLOW_TABLE",
    "HOOKFLOW_BUCKET",
    "HOOKFLOW_QUEUE_PREFIX",
    "HOOKFLOW_SCHEDULER_GROUP",
    "HOOKFLOW_SCHEDULER_ROLE_ARN",
    "HOOKFLOW_SCHEDULER_DLQ_ARN",
];
/// Queue names the engine uses itself (`<stack>-router`, `<stack>-scheduler-dlq`).
pub const RESERVED_QUEUES: [&str; 2] = ["router", "scheduler"];
/// The router's queue name (after the stack prefix) and binary.
pub const ROUTER: &str = "router";
/// A queue's visibility timeout must be at least this many times its consumer's timeout.
pub const VISIBILITY_FACTOR: u64 = 6;
/// What EventBridge Scheduler replaces with the scheduled time in a target's input.
pub const SCHEDULED_TIME: &str = "<aws.scheduler.scheduled-time>";

/// One way the template falls short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A registry function has no Lambda with `HOOKFLOW_FUNCTION_ID: <id>`.
    MissingLambda { function: String },
    /// Several Lambdas claim one function.
    DuplicateLambda {
        function: String,
        lambdas: Vec<String>,
    },
    /// A Lambda names a function the registry lacks.
    UnknownFunction { lambda: String, function: String },
    /// A function id that would collide with the engine's own queues.
    ReservedId { function: String },
    /// A Lambda is built from the wrong binary.
    WrongBinary {
        lambda: String,
        expected: String,
        found: Option<String>,
    },
    /// No queue `${AWS::StackName}-<name>`.
    MissingQueue { queue: String },
    /// The Lambda has no SQS event from its queue.
    NotConsuming { lambda: String, queue: String },
    /// The queue has no `RedrivePolicy` to `${AWS::StackName}-<name>-dlq`.
    MissingDeadLetter { queue: String },
    /// The queue's messages reappear while its consumer may still run.
    VisibilityTooShort {
        queue: String,
        visibility_secs: u64,
        lambda: String,
        timeout_secs: u64,
    },
    /// An SQS event without `ReportBatchItemFailures`: one failed message would redeliver the batch.
    NoBatchItemFailures { lambda: String, event: String },
    /// A Lambda misses a variable the engine reads.
    MissingEnv { lambda: String, var: String },
    /// A webhook provider has no `webhook-<provider>` Lambda.
    MissingWebhook { provider: String },
    /// The webhook Lambda has no `POST /webhooks/<provider>` HttpApi event.
    MissingRoute { lambda: String, path: String },
    /// A cron trigger has no schedule.
    MissingSchedule {
        function: String,
        cron: String,
        timezone: String,
    },
    /// A schedule that sends something other than a cron message to the router.
    BadSchedule { schedule: String, reason: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingLambda { function } => write!(
                f,
                "function `{function}` has no Lambda: add an AWS::Serverless::Function built from \
                 functions/{function} (Binary: {function}) with {FUNCTION_ID_ENV}: {function}"
            ),
            Self::DuplicateLambda { function, lambdas } => {
                write!(
                    f,
                    "function `{function}` has several Lambdas: {}",
                    lambdas.join(", ")
                )
            }
            Self::UnknownFunction { lambda, function } => write!(
                f,
                "Lambda {lambda} runs function `{function}`, which the registry (functions/registry) lacks"
            ),
            Self::ReservedId { function } => write!(
                f,
                "function id `{function}` collides with an engine queue name ({})",
                RESERVED_QUEUES.join(", ")
            ),
            Self::WrongBinary {
                lambda,
                expected,
                found,
            } => write!(
                f,
                "Lambda {lambda} must be built from binary `{expected}` (Metadata.BuildProperties.Binary), not {}",
                found
                    .as_deref()
                    .map_or_else(|| "nothing".to_owned(), |b| format!("`{b}`"))
            ),
            Self::MissingQueue { queue } => write!(f, "no queue named {STACK_PREFIX}{queue}"),
            Self::NotConsuming { lambda, queue } => {
                write!(
                    f,
                    "Lambda {lambda} has no SQS event from queue {STACK_PREFIX}{queue}"
                )
            }
            Self::MissingDeadLetter { queue } => write!(
                f,
                "queue {STACK_PREFIX}{queue} has no RedrivePolicy to a queue named {STACK_PREFIX}{queue}-dlq"
            ),
            Self::VisibilityTooShort {
                queue,
                visibility_secs,
                lambda,
                timeout_secs,
            } => write!(
                f,
                "queue {STACK_PREFIX}{queue} has VisibilityTimeout {visibility_secs} s, below \
                 {VISIBILITY_FACTOR} x the {timeout_secs} s Timeout of {lambda}"
            ),
            Self::NoBatchItemFailures { lambda, event } => write!(
                f,
                "Lambda {lambda}'s SQS event {event} lacks FunctionResponseTypes: [ReportBatchItemFailures]"
            ),
            Self::MissingEnv { lambda, var } => {
                write!(f, "Lambda {lambda} has no environment variable {var}")
            }
            Self::MissingWebhook { provider } => write!(
                f,
                "webhook provider `{provider}` has no Lambda built from binary webhook-{provider}"
            ),
            Self::MissingRoute { lambda, path } => {
                write!(f, "Lambda {lambda} has no HttpApi event POST {path}")
            }
            Self::MissingSchedule {
                function,
                cron,
                timezone,
            } => write!(
                f,
                "function `{function}`'s cron `{cron}` ({timezone}) has no AWS::Scheduler::Schedule: \
                 ScheduleExpression {}, ScheduleExpressionTimezone {timezone}, Target.Arn the router \
                 queue, Target.Input {}",
                aws_cron(cron).unwrap_or_else(|| "cron(<translate by hand>)".to_owned()),
                cron_input(function)
            ),
            Self::BadSchedule { schedule, reason } => write!(f, "schedule {schedule}: {reason}"),
        }
    }
}

/// Why the check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The template could not be read.
    #[error("cannot read the template: {0}")]
    Parse(#[from] ParseError),
    /// The template misses things; each problem says what to add.
    #[error("{} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Problems(Vec<Problem>),
}

/// What a passing template deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Workflow Lambdas checked.
    pub functions: usize,
    /// Webhook Lambdas checked.
    pub webhooks: usize,
    /// Cron schedules checked.
    pub schedules: usize,
}

/// Checks a template's text against `functions` (the registry's definitions)
/// and every webhook provider.
///
/// # Errors
/// [`CheckError::Parse`] for an unreadable template, [`CheckError::Problems`]
/// listing everything missing or miswired.
pub fn check(text: &str, functions: &[Function]) -> Result<Summary, CheckError> {
    let template = Template::parse(text)?;
    let mut problems = Vec::new();
    let workflows: Vec<&Function> = functions
        .iter()
        .filter(|f| !f.id().ends_with(FAILURE_SUFFIX))
        .collect();

    for lambda in template.lambdas.values() {
        for var in COMMON_ENV {
            if !lambda.env.contains_key(var) {
                problems.push(Problem::MissingEnv {
                    lambda: lambda.logical_id.clone(),
                    var: var.to_owned(),
                });
            }
        }
        for event in lambda.sqs.iter().filter(|e| !e.reports_batch_failures) {
            problems.push(Problem::NoBatchItemFailures {
                lambda: lambda.logical_id.clone(),
                event: event.name.clone(),
            });
        }
        if let Some(value) = lambda.env.get(FUNCTION_ID_ENV) {
            let function = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            if !workflows.iter().any(|f| f.id() == function) {
                problems.push(Problem::UnknownFunction {
                    lambda: lambda.logical_id.clone(),
                    function,
                });
            }
        }
    }

    match template
        .lambdas
        .values()
        .find(|l| l.binary.as_deref() == Some(ROUTER))
    {
        Some(router) => check_consumer(&template, router, ROUTER, &mut problems),
        None => problems.push(Problem::WrongBinary {
            lambda: "(router)".to_owned(),
            expected: ROUTER.to_owned(),
            found: None,
        }),
    }

    for function in &workflows {
        let id = function.id();
        if RESERVED_QUEUES.contains(&id) {
            problems.push(Problem::ReservedId {
                function: id.to_owned(),
            });
        }
        let lambdas: Vec<&Lambda> = template
            .lambdas
            .values()
            .filter(|l| l.env_str(FUNCTION_ID_ENV) == Some(id))
            .collect();
        match lambdas.as_slice() {
            [] => problems.push(Problem::MissingLambda {
                function: id.to_owned(),
            }),
            [lambda] => {
                if lambda.binary.as_deref() != Some(id) {
                    problems.push(Problem::WrongBinary {
                        lambda: lambda.logical_id.clone(),
                        expected: id.to_owned(),
                        found: lambda.binary.clone(),
                    });
                }
                check_consumer(&template, lambda, id, &mut problems);
            }
            several => problems.push(Problem::DuplicateLambda {
                function: id.to_owned(),
                lambdas: several.iter().map(|l| l.logical_id.clone()).collect(),
            }),
        }
    }

    let webhooks = check_webhooks(&template, &mut problems);
    let schedules = check_schedules(&template, &workflows, &mut problems);

    if problems.is_empty() {
        Ok(Summary {
            functions: workflows.len(),
            webhooks,
            schedules,
        })
    } else {
        Err(CheckError::Problems(problems))
    }
}

/// Reads and checks a template file against the real registry.
///
/// # Errors
/// An unreadable file, or the [`CheckError`] of [`check`].
pub fn check_file(path: &Path) -> anyhow::Result<Summary> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    check(&text, &hookflow_registry::functions())
        .with_context(|| format!("{} is not deployable", path.display()))
}

/// `lambda` consumes `${AWS::StackName}-<queue>`, which has a dead-letter queue
/// and a long enough visibility timeout.
fn check_consumer(template: &Template, lambda: &Lambda, queue: &str, problems: &mut Vec<Problem>) {
    let Some(found) = template.queue_named(queue) else {
        problems.push(Problem::MissingQueue {
            queue: queue.to_owned(),
        });
        return;
    };
    if !lambda
        .sqs
        .iter()
        .any(|e| e.queue.as_deref() == Some(found.logical_id.as_str()))
    {
        problems.push(Problem::NotConsuming {
            lambda: lambda.logical_id.clone(),
            queue: queue.to_owned(),
        });
    }
    let dead_letter_name = format!("{queue}-dlq");
    let wired = found
        .dead_letter
        .as_ref()
        .and_then(|id| template.queues.get(id))
        .is_some_and(|dlq| dlq.name.as_deref() == Some(dead_letter_name.as_str()));
    if !wired {
        problems.push(Problem::MissingDeadLetter {
            queue: queue.to_owned(),
        });
    }
    if found.visibility_secs < VISIBILITY_FACTOR * lambda.timeout_secs {
        problems.push(Problem::VisibilityTooShort {
            queue: queue.to_owned(),
            visibility_secs: found.visibility_secs,
            lambda: lambda.logical_id.clone(),
            timeout_secs: lambda.timeout_secs,
        });
    }
}

fn check_webhooks(template: &Template, problems: &mut Vec<Problem>) -> usize {
    for provider in Provider::ALL {
        let binary = format!("webhook-{provider}");
        let Some(lambda) = template
            .lambdas
            .values()
            .find(|l| l.binary.as_deref() == Some(binary.as_str()))
        else {
            problems.push(Problem::MissingWebhook {
                provider: provider.to_string(),
            });
            continue;
        };
        let path = provider.path();
        if !lambda
            .routes
            .iter()
            .any(|(method, p)| method == "POST" && *p == path)
        {
            problems.push(Problem::MissingRoute {
                lambda: lambda.logical_id.clone(),
                path,
            });
        }
        for var in WebhookConfig::env_vars(provider) {
            if !lambda.env.contains_key(*var) {
                problems.push(Problem::MissingEnv {
                    lambda: lambda.logical_id.clone(),
                    var: (*var).to_owned(),
                });
            }
        }
    }
    Provider::ALL.len()
}

/// Every cron trigger has a schedule; every schedule is a well-formed cron tick
/// for a cron-triggered function.
fn check_schedules(
    template: &Template,
    workflows: &[&Function],
    problems: &mut Vec<Problem>,
) -> usize {
    let router_queue = template.queue_named(ROUTER).map(|q| q.logical_id.as_str());
    // (function id, timezone, expression) of each well-formed schedule.
    let mut ticks = Vec::new();
    for schedule in template.schedules.values() {
        let bad = |reason: String| Problem::BadSchedule {
            schedule: schedule.logical_id.clone(),
            reason,
        };
        if schedule.target.is_none() || schedule.target.as_deref() != router_queue {
            problems.push(bad(format!(
                "Target.Arn must be !GetAtt of the queue {STACK_PREFIX}{ROUTER}"
            )));
        }
        let function = match cron_function(schedule.input.as_deref()) {
            Ok(function) => function,
            Err(reason) => {
                problems.push(bad(reason));
                continue;
            }
        };
        let is_cron = |f: &&&Function| {
            f.triggers()
                .iter()
                .any(|t| matches!(t, Trigger::Cron { .. }))
        };
        if !workflows.iter().filter(is_cron).any(|f| f.id() == function) {
            problems.push(bad(format!(
                "function `{function}` is not a cron-triggered function of the registry"
            )));
        }
        let expression = schedule.expression.clone().unwrap_or_default();
        if !expression.starts_with("cron(") {
            problems.push(bad(format!(
                "ScheduleExpression `{expression}` is not a cron(...) expression"
            )));
        }
        ticks.push((function, schedule.timezone.clone(), expression));
    }
    for function in workflows {
        for trigger in function.triggers() {
            let Trigger::Cron { schedule, timezone } = trigger else {
                continue;
            };
            let expected = aws_cron(schedule);
            let found = ticks.iter().position(|(f, tz, expression)| {
                f == function.id()
                    && tz == timezone
                    && expected.as_ref().is_none_or(|e| e == expression)
            });
            match found {
                Some(index) => {
                    ticks.swap_remove(index);
                }
                None => problems.push(Problem::MissingSchedule {
                    function: function.id().to_owned(),
                    cron: schedule.clone(),
                    timezone: timezone.clone(),
                }),
            }
        }
    }
    template.schedules.len()
}

/// The function id of a schedule's input, which must be the [`Envelope`] of a
/// `cron` message for the router (`at` = the scheduled time).
fn cron_function(input: Option<&str>) -> Result<String, String> {
    let input = input.ok_or("no Target.Input")?;
    if !input.contains(SCHEDULED_TIME) {
        return Err(format!(
            "Target.Input must pass `{SCHEDULED_TIME}` as message.at"
        ));
    }
    let sample = input.replace(SCHEDULED_TIME, "2000-01-01T00:00:00Z");
    let envelope: Envelope = serde_json::from_str(&sample)
        .map_err(|e| format!("Target.Input is not a Hookflow envelope: {e}"))?;
    match envelope {
        Envelope {
            target: Target::Router,
            message: Message::Cron { function_id, .. },
            ..
        } => Ok(function_id),
        _ => Err("Target.Input must be a `cron` message to the router".to_owned()),
    }
}

/// The `Target.Input` a cron schedule for `function` sends.
#[must_use]
pub fn cron_input(function: &str) -> String {
    format!(
        r#"'{{"target":{{"queue":"router"}},"message":{{"type":"cron","function_id":"{function}","at":"{SCHEDULED_TIME}"}},"dedupe_key":null}}'"#
    )
}

/// EventBridge Scheduler's `cron(min hour day month weekday year)` for a 5-field
/// cron (or a 6-field one whose seconds are `0`), when it translates without
/// judgment: one of day-of-month and day-of-week must be `*`, and week days
/// must be names (Scheduler counts them 1-7 from Sunday, cron 0-6).
#[must_use]
pub fn aws_cron(cron: &str) -> Option<String> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let [minute, hour, day, month, weekday] = match fields.as_slice() {
        [minute, hour, day, month, weekday] | ["0", minute, hour, day, month, weekday] => {
            [*minute, *hour, *day, *month, *weekday]
        }
        _ => return None,
    };
    let (day, weekday) = match (day, weekday) {
        (day, "*") => (day, "?"),
        ("*", weekday) if !weekday.chars().any(|c| c.is_ascii_digit()) => ("?", weekday),
        _ => return None,
    };
    Some(format!("cron({minute} {hour} {day} {month} {weekday} *)"))
}

/// `hookflow template check`: prints a summary, or fails with every problem.
///
/// # Errors
/// The file cannot be read or does not pass [`check`].
pub fn run_check(path: &Path) -> anyhow::Result<()> {
    let summary = check_file(path)?;
    println!(
        "{}: ok ({} workflow function(s), router, {} webhook(s), {} cron schedule(s))",
        path.display(),
        summary.functions,
        summary.webhooks,
        summary.schedules
    );
    Ok(())
}

#[cfg(test)]
mod tests;
