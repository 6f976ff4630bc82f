//! The parts of a SAM template that `hookflow template check` reads: queues,
//! Lambdas (with `Globals.Function` applied), their SQS and HTTP API events, and
//! Scheduler schedules.
//!
//! YAML short-form tags are read as the long form CloudFormation defines
//! (`!Ref X` = `{Ref: X}`, `!GetAtt A.B` = `{Fn::GetAtt: [A, B]}`, `!Sub s` =
//! `{Fn::Sub: s}`), so either spelling of the template checks the same.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

/// A queue's default visibility timeout in seconds (SQS).
const DEFAULT_VISIBILITY_SECS: u64 = 30;
/// A Lambda's default timeout in seconds.
const DEFAULT_TIMEOUT_SECS: u64 = 3;
/// What every `QueueName` starts with: the stack name and a dash.
pub const STACK_PREFIX: &str = "${AWS::StackName}-";

/// Why a template could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not YAML.
    #[error("not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// YAML, but no `Resources` mapping.
    #[error("no `Resources` mapping")]
    NoResources,
}

/// An `AWS::SQS::Queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Logical id.
    pub logical_id: String,
    /// The name after `${AWS::StackName}-`, when named by that convention.
    pub name: Option<String>,
    /// `VisibilityTimeout` in seconds.
    pub visibility_secs: u64,
    /// Logical id of the queue `RedrivePolicy.deadLetterTargetArn` points at.
    pub dead_letter: Option<String>,
}

/// An SQS event source of a Lambda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsEvent {
    /// The event's key under `Events`.
    pub name: String,
    /// Logical id of the queue it consumes (`!GetAtt Queue.Arn`).
    pub queue: Option<String>,
    /// Whether `FunctionResponseTypes` has `ReportBatchItemFailures`.
    pub reports_batch_failures: bool,
}

/// An `AWS::Serverless::Function`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lambda {
    /// Logical id.
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`.
    pub binary: Option<String>,
    /// Environment variables, `Globals.Function` ones included.
    pub env: BTreeMap<String, Value>,
    /// `Timeout` in seconds (own, global or Lambda's default).
    pub timeout_secs: u64,
    /// SQS event sources.
    pub sqs: Vec<SqsEvent>,
    /// HTTP API routes, as (upper-case method, path).
    pub routes: Vec<(String, String)>,
}

impl Lambda {
    /// An environment variable's literal string value.
    #[must_use]
    pub fn env_str(&self, name: &str) -> Option<&str> {
        self.env.get(name).and_then(Value::as_str)
    }
}

/// An `AWS::Scheduler::Schedule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Logical id.
    pub logical_id: String,
    /// Logical id of the target (`Target.Arn: !GetAtt Queue.Arn`).
    pub target: Option<String>,
    /// `Target.Input` text.
    pub input: Option<String>,
    /// `ScheduleExpression`.
    pub expression: Option<String>,
    /// `ScheduleExpressionTimezone` (`UTC` when absent).
    pub timezone: String,
}

/// What the check needs from a template.
#[derive(Debug, Clone, Default)]
pub struct Template {
    /// Queues, by logical id.
    pub queues: BTreeMap<String, Queue>,
    /// Lambdas, by logical id.
    pub lambdas: BTreeMap<String, Lambda>,
    /// Schedules, by logical id.
    pub schedules: BTreeMap<String, Schedule>,
}

impl Template {
    /// Reads a template's text.
    ///
    /// # Errors
    /// [`ParseError`] when it is not YAML or has no resources.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let doc = to_json(serde_yaml_ng::from_str::<Yaml>(text)?);
        let resources = doc
            .get("Resources")
            .and_then(Value::as_object)
            .ok_or(ParseError::NoResources)?;
        let globals = doc.pointer("/Globals/Function").unwrap_or(&Value::Null);
        let mut template = Self::default();
        for (id, resource) in resources {
            let props = resource.get("Properties").unwrap_or(&Value::Null);
            match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::SQS::Queue") => {
                    template.queues.insert(id.clone(), queue(id, props));
                }
                Some("AWS::Serverless::Function") => {
                    let lambda = lambda(id, resource, props, globals);
                    template.lambdas.insert(id.clone(), lambda);
                }
                Some("AWS::Scheduler::Schedule") => {
                    template.schedules.insert(id.clone(), schedule(id, props));
                }
                _ => {}
            }
        }
        Ok(template)
    }

    /// The queue named `${AWS::StackName}-<name>`.
    #[must_use]
    pub fn queue_named(&self, name: &str) -> Option<&Queue> {
        self.queues
            .values()
            .find(|q| q.name.as_deref() == Some(name))
    }
}

fn queue(id: &str, props: &Value) -> Queue {
    Queue {
        logical_id: id.to_owned(),
        name: props
            .get("QueueName")
            .and_then(sub_text)
            .and_then(|name| name.strip_prefix(STACK_PREFIX).map(str::to_owned)),
        visibility_secs: props
            .get("VisibilityTimeout")
            .and_then(number)
            .unwrap_or(DEFAULT_VISIBILITY_SECS),
        dead_letter: props
            .pointer("/RedrivePolicy/deadLetterTargetArn")
            .and_then(referenced),
    }
}

fn lambda(id: &str, resource: &Value, props: &Value, globals: &Value) -> Lambda {
    let mut env = Map::new();
    for source in [globals, props] {
        if let Some(vars) = source
            .pointer("/Environment/Variables")
            .and_then(Value::as_object)
        {
            env.extend(vars.clone());
        }
    }
    let mut sqs = Vec::new();
    let mut routes = Vec::new();
    for (name, event) in props
        .get("Events")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let event_props = event.get("Properties").unwrap_or(&Value::Null);
        match event.get("Type").and_then(Value::as_str) {
            Some("SQS") => sqs.push(SqsEvent {
                name: name.clone(),
                queue: event_props.get("Queue").and_then(referenced),
                reports_batch_failures: event_props
                    .get("FunctionResponseTypes")
                    .and_then(Value::as_array)
                    .is_some_and(|types| types.iter().any(|t| t == "ReportBatchItemFailures")),
            }),
            Some("HttpApi") => routes.push((
                event_props
                    .get("Method")
                    .and_then(Value::as_str)
                    .unwrap_or("ANY")
                    .to_ascii_uppercase(),
                event_props
                    .get("Path")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )),
            _ => {}
        }
    }
    Lambda {
        logical_id: id.to_owned(),
        binary: resource
            .pointer("/Metadata/BuildProperties/Binary")
            .and_then(Value::as_str)
            .map(str::to_owned),
        env: env.into_iter().collect(),
        timeout_secs: props
            .get("Timeout")
            .or_else(|| globals.get("Timeout"))
            .and_then(number)
            .unwrap_or(DEFAULT_TIMEOUT_SECS),
        sqs,
        routes,
    }
}

fn schedule(id: &str, props: &Value) -> Schedule {
    let text = |pointer: &str| props.pointer(pointer).and_then(sub_text);
    Schedule {
        logical_id: id.to_owned(),
        target: props.pointer("/Target/Arn").and_then(referenced),
        input: text("/Target/Input"),
        expression: text("/ScheduleExpression"),
        timezone: text("/ScheduleExpressionTimezone").unwrap_or_else(|| "UTC".to_owned()),
    }
}

/// A literal string, or the text of `Fn::Sub` (plain or with a variable map).
fn sub_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => match map.get("Fn::Sub")? {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => items.first()?.as_str().map(str::to_owned),
            _ => None,
        },
        _ => None,
    }
}

/// The logical id named by `Ref X`, `Fn::GetAtt [X, attr]` or `Fn::GetAtt X.attr`.
fn referenced(value: &Value) -> Option<String> {
    let map = value.as_object()?;
    if let Some(id) = map.get("Ref").and_then(Value::as_str) {
        return Some(id.to_owned());
    }
    match map.get("Fn::GetAtt")? {
        Value::Array(parts) => parts.first()?.as_str().map(str::to_owned),
        Value::String(dotted) => dotted.split('.').next().map(str::to_owned),
        _ => None,
    }
}

/// A whole number given as a number or a numeric string.
fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// YAML to JSON, with CloudFormation short-form tags in their long form.
fn to_json(yaml: Yaml) -> Value {
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => n
            .as_u64()
            .map(Value::from)
            .or_else(|| n.as_i64().map(Value::from))
            .or_else(|| n.as_f64().map(Value::from))
            .unwrap_or(Value::Null),
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key_text(key), to_json(value)))
                .collect(),
        ),
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = to_json(tagged.value);
            let (key, value) = match (name, value) {
                ("Ref" | "Condition", value) => (name.to_owned(), value),
                ("GetAtt", Value::String(dotted)) => {
                    let parts = match dotted.split_once('.') {
                        Some((id, attr)) => vec![id.into(), attr.into()],
                        None => vec![dotted.into()],
                    };
                    ("Fn::GetAtt".to_owned(), Value::Array(parts))
                }
                (other, value) => (format!("Fn::{other}"), value),
            };
            Value::Object(Map::from_iter([(key, value)]))
        }
    }
}

fn key_text(key: Yaml) -> String {
    match to_json(key) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_form_intrinsics_read_the_same() {
        let short = "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub ${AWS::StackName}-jobs\n      VisibilityTimeout: 60\n      RedrivePolicy: {deadLetterTargetArn: !GetAtt D.Arn, maxReceiveCount: 5}\n";
        let long = "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: {\"Fn::Sub\": \"${AWS::StackName}-jobs\"}\n      VisibilityTimeout: \"60\"\n      RedrivePolicy: {deadLetterTargetArn: {\"Fn::GetAtt\": [D, Arn]}, maxReceiveCount: 5}\n";
        let expected = Queue {
            logical_id: "Q".into(),
            name: Some("jobs".into()),
            visibility_secs: 60,
            dead_letter: Some("D".into()),
        };
        assert_eq!(Template::parse(short).unwrap().queues["Q"], expected);
        assert_eq!(Template::parse(long).unwrap().queues["Q"], expected);
    }

    #[test]
    fn function_settings_fall_back_to_globals() {
        let text = "Globals:\n  Function:\n    Timeout: 30\n    Environment: {Variables: {A: a, B: b}}\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment: {Variables: {B: own}}\n";
        let lambda = &Template::parse(text).unwrap().lambdas["F"];
        assert_eq!(lambda.timeout_secs, 30);
        assert_eq!(lambda.env_str("A"), Some("a"));
        assert_eq!(lambda.env_str("B"), Some("own"));
    }

    #[test]
    fn a_template_without_resources_is_an_error() {
        assert!(matches!(
            Template::parse("a: 1"),
            Err(ParseError::NoResources)
        ));
        assert!(matches!(Template::parse("a: [1"), Err(ParseError::Yaml(_))));
    }
}
