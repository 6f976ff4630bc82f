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
