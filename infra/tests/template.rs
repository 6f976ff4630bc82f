//! The checked-in `template.yaml` is what `hookflow template generate` writes
//! for the real registry: every workflow function has its Lambda, queue and
//! dead-letter queue, every webhook provider its Lambda and route, every cron
//! trigger its schedule (cfn-lint and `sam validate --lint` check the rest in
//! `scripts/test`).

use std::path::Path;

use hookflow_cli::template;

#[test]
fn the_checked_in_template_is_what_generate_writes_for_the_registry() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    template::check(&text, &hookflow_registry::functions()).unwrap_or_else(|e| panic!("{e}"));
    for function in hookflow_registry::functions() {
        let id = function.id();
        if id.ends_with(hookflow::function::FAILURE_SUFFIX) {
            continue;
        }
        assert!(
            text.contains(&format!("HOOKFLOW_FUNCTION_ID: {id}\n")),
            "{id}"
        );
        assert!(
            text.contains(&format!("QueueName: !Sub ${{AWS::StackName}}-{id}\n")),
            "{id}"
        );
    }
}

#[test]
fn the_alarms_and_the_dashboard_read_the_metrics_the_engine_writes() {
    use hookflow::observe::names;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    // The variable `hookflow_aws::telemetry::METRICS_NAMESPACE_VAR` names
    // (this crate does not build the AWS SDK to read it).
    assert!(text.contains(
        "HOOKFLOW_METRICS_NAMESPACE: !If [MetricsOn, !Sub \"Hookflow/${AWS::StackName}\", \"off\"]"
    ));
    for name in [names::RUNS_FAILED, names::RUNS_COMPLETED] {
        assert!(
            text.contains(&format!("MetricName: {name}\n")),
            "the failure-rate alarm reads {name}"
        );
    }
    for name in [
        names::RUNS_STARTED,
        names::RUNS_CANCELLED,
        names::STEP_DURATION,
        names::START_DELAY,
    ] {
        assert!(
            text.contains(&format!("\"{name}\"")),
            "the dashboard shows {name}"
        );
    }
}
