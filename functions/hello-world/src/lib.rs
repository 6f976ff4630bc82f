//! `hello-world`: the smallest useful workflow, to try `hookflow dev` with.
//!
//! On `demo/hello` (`data.name`, optional `data.delay_secs`, default 5): compose
//! a greeting (a memoized step), sleep durably, then "deliver" it.

use std::time::Duration;

use hookflow::Function;
use serde_json::json;

/// The event that starts it.
pub const TRIGGER: &str = "demo/hello";

/// The function definition.
#[must_use]
pub fn function() -> Function {
    Function::new("hello-world")
        .name("Hello world")
        .on_event(TRIGGER)
        .handler(|ctx| async move {
            let name = ctx.event.data["name"]
                .as_str()
                .unwrap_or("world")
                .to_owned();
            let delay = ctx.event.data["delay_secs"].as_u64().unwrap_or(5);
            let greeting: String = ctx
                .step
                .run(
                    "compose",
                    move || async move { Ok(format!("Hello, {name}!")) },
                )
                .await?;
            ctx.step.sleep("pause", Duration::from_secs(delay)).await?;
            let text = greeting.clone();
            let delivered: serde_json::Value = ctx
                .step
                .run(
                    "deliver",
                    move || async move { Ok(json!({"delivered": text})) },
                )
                .await?;
            Ok(delivered)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookflow::{Event, RunStatus};
    use hookflow_embedded::testing::TestEnv;

    #[tokio::test]
    async fn greets_after_the_pause() {
        let env = TestEnv::new(vec![function()]);
        env.send(vec![Event::new(
            TRIGGER,
            json!({"name": "Ada", "delay_secs": 60}),
        )])
        .await;
        assert_eq!(
            env.only_run("hello-world").await.run.status,
            RunStatus::Sleeping
        );
        env.advance(Duration::from_secs(60)).await;
        let view = env.only_run("hello-world").await;
        assert_eq!(view.run.status, RunStatus::Completed);
        assert_eq!(view.run.output, Some(json!({"delivered": "Hello, Ada!"})));
    }
}
