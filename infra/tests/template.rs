//! The real `template.yaml` deploys the real registry: every workflow function
//! has its Lambda, queue and dead-letter queue, every webhook provider its
//! Lambda and route, every cron trigger its schedule.

use std::path::Path;

use hookflow_cli::template;
use hookflow_webhooks::Provider;

#[test]
fn the_sam_template_deploys_every_registry_function_and_webhook() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let summary = template::check_file(&path).unwrap_or_else(|e| panic!("{e:#}"));
    let workflows = hookflow_registry::functions()
        .iter()
        .filter(|f| !f.id().ends_with(hookflow::function::FAILURE_SUFFIX))
        .count();
    assert_eq!(summary.functions, workflows);
    assert_eq!(summary.webhooks, Provider::ALL.len());
}
