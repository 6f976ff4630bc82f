//! The dashboard in a real headless browser: Debian's Chromium driven over
//! WebDriver (chromedriver), against `hookflow dev`'s router on a real
//! socket with the registry's functions and real workers.
//!
//! `scripts/test` installs `chromium` and `chromium-driver`; elsewhere set
//! `HOOKFLOW_CHROMIUM` / `HOOKFLOW_CHROMEDRIVER` to their paths. Without
//! them this test fails and says so: a browser test that skips itself
//! would pass without testing anything.

mod dev_server;

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// How long a page may take to show what the test waits for.
const PATIENCE: Duration = Duration::from_secs(20);

fn binary(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} not found: the dashboard test needs Chromium and ChromeDriver \
         (Debian packages `chromium` and `chromium-driver`, which `scripts/test` installs), \
         or {var} set to the binary"
    );
    path
}

/// A chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The browser chromedriver started outlives it when a test fails
        // before closing its session: end it by its own profile directory.
        let _ = Command::new("pkill")
            .args(["-f", &self._profile.path().display().to_string()])
            .status();
    }
}

async fn driver() -> Driver {
    let path = binary("HOOKFLOW_CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: tempfile::tempdir().unwrap(),
    };
    let deadline = Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

async fn browser(driver: &Driver) -> Client {
    let chromium = binary("HOOKFLOW_CHROMIUM", "/usr/bin/chromium");
    let profile = driver._profile.path().display().to_string();
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={profile}"),
            ]
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// The text of the first element matching `css`, once `ready` holds for
/// it (the pages refresh themselves while a run is unfinished).
async fn wait_text(client: &Client, css: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut last = String::new();
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if ready(&text) {
                return text;
            }
            last = text;
        }
        assert!(
            Instant::now() < deadline,
            "`{css}` never got ready; last text: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends an event through the dashboard's form; returns the run id it
/// started, read from the event page.
async fn send_through_the_form(client: &Client, base: &str, data: &str) -> String {
    client.goto(&format!("{base}/ui/events")).await.unwrap();
    let form = client.form(Locator::Css("#send-event")).await.unwrap();
    form.set_by_name("name", "demo/hello").await.unwrap();
    let data_box = client
        .find(Locator::Css("#send-event textarea[name=data]"))
        .await
        .unwrap();
    data_box.clear().await.unwrap();
    data_box.send_keys(data).await.unwrap();
    client
        .find(Locator::Css("#send-event button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The event page lists the run its event started.
    wait_text(client, "#event-runs tr[data-run] td a", |t| !t.is_empty()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_sends_an_event_watches_the_run_and_cancels_a_sleeping_one() {
    let driver = driver().await;
    let dev = dev_server::dev_server().await;
    let (base, runtime) = (dev.url.clone(), &dev.runtime);
    let client = browser(&driver).await;

    // The functions page lists every function with its triggers.
    client.goto(&format!("{base}/")).await.unwrap();
    let hello = wait_text(&client, "tr[data-function='hello-world']", |t| {
        !t.is_empty()
    })
    .await;
    assert!(hello.contains("demo/hello"), "{hello}");

    // Send an event through the form and watch its run complete: the run
    // page updates itself (no reload by the test) while the run sleeps 3 s.
    let run_id = send_through_the_form(&client, &base, r#"{"name": "Ada", "delay_secs": 3}"#).await;
    client
        .find(Locator::Css(&format!("a[href='/ui/runs/{run_id}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let first = wait_text(&client, "#run-status", |_| true).await;
    assert_ne!(first, "completed", "the page opened while the run slept");
    let status = wait_text(&client, "#run-status", |s| s == "completed").await;
    assert_eq!(status, "completed");
    let steps: Vec<String> = {
        let rows = client
            .find_all(Locator::Css("#steps tr[data-step]"))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for row in rows {
            ids.push(row.attr("data-step").await.unwrap().unwrap_or_default());
        }
        ids
    };
    assert!(
        steps.ends_with(&["compose".into(), "pause".into(), "deliver".into()]),
        "{steps:?}"
    );
    let output = wait_text(&client, "#run-output", |t| !t.is_empty()).await;
    assert!(output.contains("Hello, Ada!"), "{output}");
    // The sleep is drawn as a gap in the waterfall.
    let pause_bar = client
        .find(Locator::Css("#steps tr[data-step='pause'] .bar"))
        .await
        .unwrap();
    let class = pause_bar.attr("class").await.unwrap().unwrap_or_default();
    assert!(class.contains("gap"), "{class}");

    // A run that sleeps for ten minutes: cancel it from its page (the
    // button asks first).
    let sleeper =
        send_through_the_form(&client, &base, r#"{"name": "Bo", "delay_secs": 600}"#).await;
    client
        .goto(&format!("{base}/ui/runs/{sleeper}"))
        .await
        .unwrap();
    wait_text(&client, "#run-status", |s| s == "sleeping").await;
    client
        .find(Locator::Css("#cancel"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client.accept_alert().await.unwrap();
    let status = wait_text(&client, "#run-status", |s| s != "sleeping").await;
    assert_eq!(status, "cancelled");
    let stored = runtime.engine().run_view(&sleeper).await.unwrap().unwrap();
    assert_eq!(stored.run.status.as_str(), "cancelled", "the store agrees");

    // Filter the runs list by status: only the cancelled run.
    client
        .goto(&format!("{base}/ui/runs?status=cancelled"))
        .await
        .unwrap();
    let rows = client
        .find_all(Locator::Css("#runs tr[data-run]"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].attr("data-run").await.unwrap().as_deref(),
        Some(sleeper.as_str())
    );

    // Replay the cancelled run from its page: a new run of the same event.
    client
        .goto(&format!("{base}/ui/runs/{sleeper}"))
        .await
        .unwrap();
    client
        .find(Locator::Css("#replay"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "#run-status", |s| s == "sleeping").await;
    let url = client.current_url().await.unwrap();
    let replay = url.path().trim_start_matches("/ui/runs/").to_owned();
    assert_ne!(replay, sleeper);
    let replayed = runtime.engine().run_view(&replay).await.unwrap().unwrap();
    assert_eq!(replayed.run.replay_of.as_deref(), Some(sleeper.as_str()));

    client.close().await.unwrap();
}
