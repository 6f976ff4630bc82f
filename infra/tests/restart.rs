//! GIVEN `hookflow dev` with a run sleeping between two steps, WHEN the process
//! is killed with SIGKILL and started again, THEN the run completes and its
//! checkpointed step did not run again.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{free_port, http};

fn start(db: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hookflow"))
        .args(["dev", "--port", &port.to_string(), "--db"])
        .arg(db)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hookflow dev")
}

fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_of(port: u16, status: &str) -> Option<Value> {
    let (code, body) = http(
        port,
        "GET",
        &format!("/runs?function=hello-world&status={status}"),
        None,
    )
    .ok()?;
    (code == 200)
        .then(|| body["runs"].as_array()?.first().cloned())
        .flatten()
}

#[test]
fn a_killed_dev_server_resumes_its_runs_without_repeating_steps() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dev.db");
    let port = free_port();
    let mut first = start(&db, port);
    wait_for("health", Duration::from_secs(30), || {
        http(port, "GET", "/health", None)
            .ok()
            .filter(|(c, _)| *c == 200)
    });
    let event = json!({"name": "demo/hello", "data": {"name": "Kill", "delay_secs": 3}});
    let (code, _) = http(port, "POST", "/events", Some(&event)).unwrap();
    assert_eq!(code, 202);
    let run = wait_for("sleeping run", Duration::from_secs(10), || {
        run_of(port, "sleeping")
    });
    let id = run["id"].as_str().unwrap().to_owned();

    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    let port = free_port();
    let mut second = start(&db, port);
    let done = wait_for("completed run", Duration::from_secs(30), || {
        run_of(port, "completed")
    });
    assert_eq!(done["id"], id.as_str());
    let (_, view) = http(port, "GET", &format!("/runs/{id}"), None).unwrap();
    let steps = view["steps"].as_array().unwrap();
    let compose = steps.iter().find(|s| s["id"] == "compose").unwrap();
    assert_eq!(compose["attempts"], 1, "the checkpointed step ran once");
    assert_eq!(view["output"], json!({"delivered": "Hello, Kill!"}));
    second.kill().unwrap();
    second.wait().unwrap();
}
