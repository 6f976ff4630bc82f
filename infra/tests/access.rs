//! `hookflow dev` beyond loopback: it refuses to start without an admin
//! token, and with one every admin route answers 401 to a request without
//! it while webhooks and `/health` stay open. Served over a real socket
//! bound to `0.0.0.0`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hookflow::{FakeClock, Registry};
use hookflow_cli::access::{ADMIN_TOKEN_VAR, admin_token_for};
use hookflow_embedded::testing::START_MS;
use hookflow_embedded::{Embedded, SqliteStore, WorkerConfig};
use serde_json::Value;

const TOKEN: &str = "test-admin-token-0123456789";

/// Every admin route, with a body where it takes one.
const ADMIN: [(&str, &str); 30] = [
    ("POST", "/events"),
    ("GET", "/events/probe-1"),
    ("GET", "/functions"),
    ("POST", "/functions/hello-world/pause"),
    ("POST", "/functions/hello-world/resume"),
    ("GET", "/runs"),
    ("GET", "/runs/r1"),
    ("POST", "/runs/r1/cancel"),
    ("POST", "/runs/r1/replay"),
    ("POST", "/runs/bulk"),
    ("POST", "/runs/r1/rerun?from=charge"),
    ("GET", "/dead-letters"),
    ("POST", "/dead-letters/redrive"),
    ("POST", "/docs"),
    ("GET", "/docs/things"),
    ("GET", "/docs/things/a"),
    ("PUT", "/docs/things/a"),
    ("GET", "/runs?status=failed"),
    ("GET", "/"),
    ("GET", "/ui/runs"),
    ("GET", "/ui/runs/r1"),
    ("POST", "/ui/runs/r1/cancel"),
    ("POST", "/ui/runs/r1/replay"),
    ("POST", "/ui/runs/r1/rerun"),
    ("GET", "/ui/events"),
    ("POST", "/ui/events"),
    ("GET", "/ui/events/probe-1"),
    ("GET", "/ui/dead-letters"),
    ("POST", "/ui/dead-letters/redrive"),
    ("POST", "/ui/functions/hello-world/pause"),
];

#[tokio::test]
async fn dev_refuses_to_listen_beyond_loopback_without_a_token() {
    if std::env::var_os(ADMIN_TOKEN_VAR).is_some() {
        return; // the process was given one; the rule is unit-tested too
    }
    let dir = tempfile::tempdir().unwrap();
    let args = hookflow_cli::DevArgs {
        host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
        db: dir.path().join("dev.db"),
        workers: 1,
        bench: false,
        step_log: None,
    };
    let err = hookflow_cli::dev::serve(args).await.unwrap_err();
    assert!(format!("{err:#}").contains(ADMIN_TOKEN_VAR), "{err:#}");
    assert!(
        !dir.path().join("dev.db").exists(),
        "refused before opening anything"
    );
}

/// The registry's functions over an in-memory store, on a fake clock.
fn runtime() -> Embedded {
    let registry = Registry::new(hookflow_registry::functions()).unwrap();
    Embedded::new(
        SqliteStore::in_memory().unwrap(),
        registry,
        Arc::new(FakeClock::new(START_MS)),
        WorkerConfig::default(),
    )
}

async fn serve_on_any_interface() -> SocketAddr {
    let runtime = runtime();
    let receiver = Arc::new(hookflow_webhooks::test_secrets::receiver().unwrap());
    let host = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let token = admin_token_for(host, Some(TOKEN)).unwrap();
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(host, 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = hookflow_cli::api::router_with_access(runtime, receiver, token);
    tokio::spawn(async move { axum::serve(listener, app).await });
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

#[tokio::test]
async fn beyond_loopback_admin_routes_need_the_token_and_webhooks_stay_open() {
    let addr = serve_on_any_interface().await;
    let http = reqwest::Client::new();
    let call = |method: &str, path: &str, token: Option<&str>| {
        let mut req = http
            .request(method.parse().unwrap(), format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .body(r#"{"name": "test/ping", "data": {}, "id": "probe-1"}"#);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        req.send()
    };
    // WHEN an admin route is called without the token, or with a wrong one
    for (method, path) in ADMIN {
        for token in [None, Some("test-admin-token-0123456780"), Some("")] {
            let response = call(method, path, token).await.unwrap();
            // THEN it is refused, and says how to get in
            assert_eq!(response.status(), 401, "{method} {path} with {token:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
        }
    }
    // AND nothing was stored: with the token, the refused event does not exist
    let probe = call("GET", "/events/probe-1", Some(TOKEN)).await.unwrap();
    assert_eq!(probe.status(), 404);
    let sent = call("POST", "/events", Some(TOKEN)).await.unwrap();
    assert_eq!(sent.status(), 202);
    let stored = call("GET", "/events/probe-1", Some(TOKEN)).await.unwrap();
    assert_eq!(
        stored.status(),
        200,
        "the probe is a real event when admitted"
    );
    // AND /health and a signed webhook need no token
    let health = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let sample: Value = serde_json::from_str(include_str!(
        "../../events/webhook-shopify-orders-create.json"
    ))
    .unwrap();
    let mut webhook = http
        .post(format!("http://{addr}/webhooks/shopify"))
        .body(sample["body"].as_str().unwrap().to_owned());
    for (name, value) in sample["headers"].as_object().unwrap() {
        if !matches!(name.as_str(), "host" | "content-length") {
            webhook = webhook.header(name, value.as_str().unwrap());
        }
    }
    let accepted = webhook.send().await.unwrap();
    assert_eq!(accepted.status(), 200, "{:?}", accepted.text().await);
}

#[tokio::test]
async fn a_browser_signs_in_once_and_the_cookie_admits_its_pages() {
    let addr = serve_on_any_interface().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // WHEN a browser asks for the dashboard without signing in
    let page = http
        .get(format!("http://{addr}/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    // THEN it is sent to the sign-in page
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
    // WHEN it signs in with a wrong token, nothing is set
    let wrong = http
        .post(format!("http://{addr}/login"))
        .form(&[("token", "test-admin-token-0123456780")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    // WHEN it signs in with the token
    let signed = http
        .post(format!("http://{addr}/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    // THEN the cookie admits the pages and the actions, like the header
    let page = http
        .get(format!("http://{addr}/ui/runs"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<h1>Runs"));
    // AND another site's page cannot post through the signed-in browser
    let forged = http
        .post(format!("http://{addr}/ui/events"))
        .header("cookie", &session)
        .header("origin", "https://elsewhere.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("name", "test/forged"), ("data", "{}"), ("id", "forged-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let own = http
        .post(format!("http://{addr}/ui/events"))
        .header("cookie", &session)
        .header("sec-fetch-site", "same-origin")
        .form(&[("name", "test/own"), ("data", "{}"), ("id", "own-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 303, "{:?}", own.text().await);
    let event = |id: &'static str| {
        http.get(format!("http://{addr}/events/{id}"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .send()
    };
    assert_eq!(
        event("forged-1").await.unwrap().status(),
        404,
        "nothing stored"
    );
    assert_eq!(event("own-1").await.unwrap().status(), 200);
}

#[tokio::test]
async fn an_open_dev_server_answers_its_admin_api_on_loopback_names_only() {
    let runtime = runtime();
    let receiver = Arc::new(hookflow_webhooks::test_secrets::receiver().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = hookflow_cli::api::router(runtime, receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let get = |path: &'static str, host: &'static str| {
        http.get(format!("http://{addr}{path}"))
            .header("host", host)
            .send()
    };
    // A page whose own name was re-pointed at 127.0.0.1 (DNS rebinding)
    for path in ["/runs", "/", "/ui/events"] {
        let rebound = get(path, "evil.example:8288").await.unwrap();
        assert_eq!(rebound.status(), 403, "{path}");
    }
    // Loopback names are served; /health and webhooks are not admin routes.
    assert_eq!(get("/runs", "127.0.0.1:8288").await.unwrap().status(), 200);
    assert_eq!(get("/runs", "localhost:8288").await.unwrap().status(), 200);
    assert_eq!(get("/", "[::1]:8288").await.unwrap().status(), 200);
    assert_eq!(get("/health", "evil.example").await.unwrap().status(), 200);
}
