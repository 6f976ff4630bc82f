//! A scripted local HTTP server standing in for every external API in tests.
//!
//! [`TestServer`] binds `127.0.0.1:0`, records every request (method, path,
//! query, headers, body) and answers with the reply scripted for its method and
//! path: one reply that repeats, or a sequence (`500, 500, 200`) whose last
//! reply repeats; anything unscripted gets the default (404 unless set).
//! [`TestServer::clients`] points every client at it, each API under its own
//! path prefix ([`STRIPE_PREFIX`], ...), so one server serves a whole workflow.
//! The Google token endpoint ([`GOOGLE_TOKEN_PATH`]) is scripted from the start
//! to issue [`GOOGLE_ACCESS_TOKEN`], so a test scripts only the calendar calls
//! (script that path again to test a failing exchange); its requests are
//! recorded like any other.
//!
//! Enable with the `testing` feature (in `[dev-dependencies]`). Like the other
//! test kits it panics on setup failures: they are test bugs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::{
    CalClient, ClerkClient, Clients, DiscordClient, EmailClient, Ga4Client, GoogleCalendarClient,
    HttpClient, MetaConversions, PostHogClient, PrintifyClient, ResendClient, ShopifyAdmin,
    SlackClient, StripeClient,
};

/// Where the Stripe API is mounted (`/stripe/v1/refunds`).
pub const STRIPE_PREFIX: &str = "/stripe";
/// Where the Cal.com API is mounted, `/v2` included (`/cal/v2/bookings`).
pub const CAL_PREFIX: &str = "/cal/v2";
/// Where the Clerk API is mounted, `/v1` included (`/clerk/v1/users/{id}`).
pub const CLERK_PREFIX: &str = "/clerk/v1";
/// Where the Discord API is mounted (`/discord/api/v10/channels/{id}/messages`).
pub const DISCORD_PREFIX: &str = "/discord/api/v10";
/// Where PostHog is mounted (`/posthog/capture/`).
pub const POSTHOG_PREFIX: &str = "/posthog";
/// The Slack incoming webhook's path.
pub const SLACK_PATH: &str = "/slack/webhook";
/// Where Postmark is mounted (`/postmark/email`).
pub const POSTMARK_PREFIX: &str = "/postmark";
/// Where Resend is mounted (`/resend/emails`).
pub const RESEND_PREFIX: &str = "/resend";
/// Where the Printify API is served (`/printify/v1/shops/...`).
pub const PRINTIFY_PREFIX: &str = "/printify/v1";
/// Where the Google Calendar API is mounted, `/calendar/v3` left out
/// (`/gcal/calendars/primary/events/{id}`).
pub const GOOGLE_CALENDAR_PREFIX: &str = "/gcal";
/// Shopify Admin: `{url}/shopify/{shop}/graphql.json` per shop
/// ([`TestServer::shopify_graphql_path`]).
pub const SHOPIFY_PREFIX: &str = "/shopify";
/// Meta Conversions API (`/meta/{pixel}/events`).
pub const META_PREFIX: &str = "/meta";
/// GA4 Measurement Protocol (`/ga4/mp/collect`).
pub const GA4_PREFIX: &str = "/ga4";
/// The Google OAuth token endpoint's path (`GOOG_OAUTH_TOKEN_URL`, and the JWT
/// `aud`).
pub const GOOGLE_TOKEN_PATH: &str = "/google/token";

/// The Stripe secret key [`TestServer::clients`] configures.
pub const STRIPE_KEY: &str = "sk_test_hookflow";
/// The Cal.com API key [`TestServer::clients`] configures.
pub const CAL_KEY: &str = "cal_test_hookflow";
/// The Clerk secret key [`TestServer::clients`] configures.
pub const CLERK_KEY: &str = "sk_test_clerk_hookflow";
/// The Discord bot token [`TestServer::clients`] configures.
pub const DISCORD_TOKEN: &str = "discord-test-token";
/// The PostHog project key [`TestServer::clients`] configures.
pub const POSTHOG_KEY: &str = "phc_test_hookflow";
/// The Postmark server token [`TestServer::clients`] configures.
pub const POSTMARK_TOKEN: &str = "postmark-test-token";
/// The Resend API key the test clients send.
pub const RESEND_KEY: &str = "re_test_hookflow";
/// The test Printify token.
pub const PRINTIFY_TOKEN: &str = "printify-test-token";
/// The test service account ([`TestServer::env`]'s `client_email`, the JWT `iss`).
pub const GOOGLE_CLIENT_EMAIL: &str = "hookflow-test@hookflow-test.iam.gserviceaccount.com";
/// The user the test service account acts as (the JWT `sub`).
pub const GOOGLE_IMPERSONATE_USER: &str = "calendar@example.com";
/// The access token [`GOOGLE_TOKEN_PATH`] issues by default; calendar calls
/// carry `Bearer {GOOGLE_ACCESS_TOKEN}`.
pub const GOOGLE_ACCESS_TOKEN: &str = "ya29.test-hookflow";
/// The test service account's private key (PKCS#8 PEM): a throwaway 2048-bit
/// RSA key made for these tests with `openssl genpkey`. It is public and
/// authenticates to nothing; never use it for anything else.
pub const GOOGLE_TEST_PRIVATE_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC4Ffs4yWw5lT2X
8UIJztBHWYbVOQZmb0IiMtIa5Zdpzc1wpbGNYonRBt3Hef7WBdftLbW/gZ3kykWV
qx3SQ0LgOJ1T62TOSJftYvAMBi6YIbC6KQpqhWntNKtoreqJLB2zDZ/ulkH7zuj6
gsZPWkIYIkJYy8jGIAjNkTrF+uiiXhiy9YHL8GzwX3UOqWrinxj/QxAMNpts3+W4
KVju5St5qF36RzeWg59vmReuyTE4Xk8aqnCIK0BV1P6eiJIJV5eW4mMpBHbnbSN5
4nj4KVRqkoEeGQujIhayO67BaveZj/aLU9MrIplqbSJGmFgCbW4WbAWnlBfTrqnD
DrlheAulAgMBAAECggEAC+oxpEzL357saX5jka1G/NSWGLdEAJ2jOwHCvfFDT2/9
zpSNkphLUZyvU8nDzUgmithCYxP5dhquI1BRMfqe2agVwsiXHI+anxz1at8m5TuK
VppGbXuXeL4dJBLcUyboVd5ZY4C/4j5Tr7cxgmcApSg+gW8l3nD/W4goCjLBxj8o
dnBo/Wpe7Rqr+vfpAuHZ1NMRq5zrbz2CCmJPKCKfDh/eL1QqbXh2TiSI84zOtDvC
9K0er6kwruaDbjINLoO/QD3GZX5SZ8eRcvLC0yQuE+dbi8bgkMegzr+e5Vgvo75/
IzwU3j6V2G4uz08+yURJw6oCzQTKDWhZ1cwP+fS1IQKBgQDb6SV6zc1XJozvry3z
zmbHC3XVyVFddngOfJMCWpjsI73sPTw/qGqWBXTwblykFcUxSOMRHtUpN/7/iGwv
896VmY9FbiUwIbadFMZ83vUVUm5WlykYetETAvXRjbEJqg55Pwo3Gzvm5AqHI7rY
7kpiTzhsXVky/5K5Kw5j2AK5lQKBgQDWS8RAx47IDCHl3b5lW7l1fRjEfrVM1upx
rZwjt3IbOH04Uo1PzafU0nz273J7Bv1O60CllUJlIAl0wjvX900lhFvrSlBe6rCW
MikBEC5oyr6jYegIgJavRU97O+ONenTVN0CAHCAGkCkOf4LaY694seasVDkJ7sUm
bZ7rtbwl0QKBgQDP0UNPCx/LBS5Y73aAmYQ9A9KGhupyZZtNLWKL7evn9Frt3myK
R/D59wwsjk7T7ZLdYWDb9ARDIJzFBTogEtk9DNH9LfrMwn9dcJ2msdhwHucQw2bd
sGrWCY0eTEWKuX9WC0HvE7iHGOfuD9DqYj4/K1hJ5+l8rVMN0+eUaTUiBQKBgQC/
CnKd8Ymna7F4lDNdduUiCXDgE7mbE+mTiFsvOCZAgB6Z7HZQE54wS6neFl8vsG54
QZ+zPhofvuzPKy1gffZHoPS1EN4PkBf2/iax7PQCteQ4EVti4Qf0nsyZpy1YfjfT
sNsOmoQudaw0YZaNDNtstORY8wiag0M82/MWXUCrUQKBgFMoVQy3WJyPooEJS/nk
pZElS86zncM4ud/6AN6NdftEazMauLDslmqb0xUVzpYslgZMutT9WcHSnL+RJB7I
1I0sHtt7dK5PEvFthE7n9DTWkcbnPDP+5HAgE1l/saLkMazaZ16qq24dg8MJByr6
yP1/R2wxa39edDOCSxfbyPf9
-----END PRIVATE KEY-----
";
/// The public half of [`GOOGLE_TEST_PRIVATE_KEY`] (SPKI PEM), to verify the
/// JWT assertion a client sent.
pub const GOOGLE_TEST_PUBLIC_KEY: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuBX7OMlsOZU9l/FCCc7Q
R1mG1TkGZm9CIjLSGuWXac3NcKWxjWKJ0Qbdx3n+1gXX7S21v4Gd5MpFlasd0kNC
4DidU+tkzkiX7WLwDAYumCGwuikKaoVp7TSraK3qiSwdsw2f7pZB+87o+oLGT1pC
GCJCWMvIxiAIzZE6xfrool4YsvWBy/Bs8F91Dqlq4p8Y/0MQDDabbN/luClY7uUr
eahd+kc3loOfb5kXrskxOF5PGqpwiCtAVdT+noiSCVeXluJjKQR2520jeeJ4+ClU
apKBHhkLoyIWsjuuwWr3mY/2i1PTKyKZam0iRphYAm1uFmwFp5QX066pww65YXgL
pQIDAQAB
-----END PUBLIC KEY-----
";

/// Largest request body recorded.
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    /// `status` with no body.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// `status` with a JSON body.
    #[must_use]
    pub fn json(status: u16, body: &Value) -> Self {
        let mut reply = Self::status(status).header("content-type", "application/json");
        reply.body = body.to_string().into_bytes();
        reply
    }

    /// `status` with a plain-text body.
    #[must_use]
    pub fn text(status: u16, body: &str) -> Self {
        let mut reply = Self::status(status).header("content-type", "text/plain");
        reply.body = body.as_bytes().to_vec();
        reply
    }

    /// Adds a response header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Waits this long before answering (to trip a client timeout).
    #[must_use]
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, percent-encoded as sent.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Headers, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (any case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Value::Null` if it is not JSON).
    #[must_use]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as `application/x-www-form-urlencoded` pairs.
    #[must_use]
    pub fn form(&self) -> BTreeMap<String, String> {
        let body = String::from_utf8_lossy(&self.body);
        reqwest::Url::parse(&format!("http://form/?{body}"))
            .map(|url| url.query_pairs().into_owned().collect())
            .unwrap_or_default()
    }

    /// The body as text (lossy).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Default)]
struct Script {
    /// Replies in order; the last one repeats.
    replies: VecDeque<Reply>,
}

struct ServerState {
    requests: Vec<Recorded>,
    scripts: HashMap<(String, String), Script>,
    default: Reply,
}

type Shared = Arc<Mutex<ServerState>>;

/// A local HTTP server with scripted replies that records every request.
/// Stops when dropped.
pub struct TestServer {
    url: String,
    state: Shared,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Starts a server on `127.0.0.1` at a free port, on the current Tokio runtime.
    ///
    /// # Panics
    /// If no local port can be bound.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state: Shared = Arc::new(Mutex::new(ServerState {
            requests: Vec::new(),
            scripts: HashMap::new(),
            default: Reply::json(404, &serde_json::json!({"error": "no scripted reply"})),
        }));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(state.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async {
                let _ = stop.await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await;
        });
        let server = Self {
            url: format!("http://{addr}"),
            state,
            shutdown: Some(shutdown),
        };
        server.on(
            "POST",
            GOOGLE_TOKEN_PATH,
            Reply::json(
                200,
                &serde_json::json!({
                    "access_token": GOOGLE_ACCESS_TOKEN,
                    "expires_in": 3599,
                    "token_type": "Bearer",
                }),
            ),
        );
        server
    }

    /// `http://127.0.0.1:{port}`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers every `method path` request with `reply` (replacing any script).
    pub fn on(&self, method: &str, path: &str, reply: Reply) {
        self.on_sequence(method, path, [reply]);
    }

    /// Answers `method path` requests with `replies` in order, then keeps
    /// repeating the last one (e.g. `500, 500, 200` to test retries).
    ///
    /// # Panics
    /// If `replies` is empty.
    pub fn on_sequence(&self, method: &str, path: &str, replies: impl IntoIterator<Item = Reply>) {
        let replies: VecDeque<Reply> = replies.into_iter().collect();
        assert!(!replies.is_empty(), "a script needs at least one reply");
        self.lock().scripts.insert(
            (method.to_ascii_uppercase(), path.to_owned()),
            Script { replies },
        );
    }

    /// Answers unscripted requests with `reply` (default: 404).
    pub fn set_default(&self, reply: Reply) {
        self.lock().default = reply;
    }

    /// Every request received so far, in arrival order.
    #[must_use]
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The requests received for `method path`, in arrival order.
    #[must_use]
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
            .cloned()
            .collect()
    }

    /// The configuration pointing every API at this server with the test
    /// credentials above (`STRIPE_API_BASE` = `{url}/stripe`, ...). Google
    /// gets [`Self::google_credentials_json`], [`GOOGLE_IMPERSONATE_USER`] and
    /// the default calendar (`primary`).
    #[must_use]
    pub fn env(&self) -> BTreeMap<String, String> {
        let url = &self.url;
        let google_credentials = Self::google_credentials_json();
        [
            (StripeClient::API_KEY_VAR, STRIPE_KEY.to_owned()),
            (StripeClient::BASE_VAR, format!("{url}{STRIPE_PREFIX}")),
            (CalClient::API_KEY_VAR, CAL_KEY.to_owned()),
            (CalClient::BASE_VAR, format!("{url}{CAL_PREFIX}")),
            (ClerkClient::SECRET_KEY_VAR, CLERK_KEY.to_owned()),
            (ClerkClient::BASE_VAR, format!("{url}{CLERK_PREFIX}")),
            (DiscordClient::BOT_TOKEN_VAR, DISCORD_TOKEN.to_owned()),
            (DiscordClient::BASE_VAR, format!("{url}{DISCORD_PREFIX}")),
            (PostHogClient::API_KEY_VAR, POSTHOG_KEY.to_owned()),
            (PostHogClient::HOST_VAR, format!("{url}{POSTHOG_PREFIX}")),
            (SlackClient::WEBHOOK_URL_VAR, format!("{url}{SLACK_PATH}")),
            (EmailClient::SERVER_TOKEN_VAR, POSTMARK_TOKEN.to_owned()),
            (EmailClient::BASE_VAR, format!("{url}{POSTMARK_PREFIX}")),
            (ResendClient::API_KEY_VAR, RESEND_KEY.to_owned()),
            (ResendClient::BASE_VAR, format!("{url}{RESEND_PREFIX}")),
            (PrintifyClient::API_TOKEN_VAR, PRINTIFY_TOKEN.to_owned()),
            (PrintifyClient::BASE_VAR, format!("{url}{PRINTIFY_PREFIX}")),
            (GoogleCalendarClient::CREDENTIALS_VAR, google_credentials),
            (
                GoogleCalendarClient::IMPERSONATE_USER_VAR,
                GOOGLE_IMPERSONATE_USER.to_owned(),
            ),
            (
                GoogleCalendarClient::BASE_VAR,
                format!("{url}{GOOGLE_CALENDAR_PREFIX}"),
            ),
            (
                GoogleCalendarClient::TOKEN_URL_VAR,
                format!("{url}{GOOGLE_TOKEN_PATH}"),
            ),
            (
                ShopifyAdmin::BASE_VAR,
                format!("{url}{SHOPIFY_PREFIX}/{{shop}}"),
            ),
            (MetaConversions::BASE_VAR, format!("{url}{META_PREFIX}")),
            (Ga4Client::BASE_VAR, format!("{url}{GA4_PREFIX}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The path Shopify Admin GraphQL calls for `shop` arrive at.
    #[must_use]
    pub fn shopify_graphql_path(shop: &str) -> String {
        format!("{SHOPIFY_PREFIX}/{shop}/graphql.json")
    }

    /// A service account JSON key like the one Google issues, with the test
    /// account and [`GOOGLE_TEST_PRIVATE_KEY`] (its `token_uri` is Google's:
    /// [`TestServer::env`] overrides it with `GOOG_OAUTH_TOKEN_URL`).
    #[must_use]
    pub fn google_credentials_json() -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "hookflow-test",
            "private_key_id": "test-key-1",
            "private_key": GOOGLE_TEST_PRIVATE_KEY,
            "client_email": GOOGLE_CLIENT_EMAIL,
            "client_id": "100000000000000000000",
            "token_uri": GoogleCalendarClient::DEFAULT_TOKEN_URL,
        })
        .to_string()
    }

    /// Every client, configured by [`TestServer::env`], with short timeouts
    /// (5 s per request, 1 s to connect).
    ///
    /// # Panics
    /// If the clients cannot be built (a bug in this module).
    #[must_use]
    pub fn clients(&self) -> Clients {
        let env = self.env();
        let http = HttpClient::with_timeouts(Duration::from_secs(5), Duration::from_secs(1))
            .expect("HTTP client");
        Clients::from_env(&http, &|name| env.get(name).cloned()).expect("test clients")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

async fn answer(State(state): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default()
        .to_vec();
    let recorded = Recorded {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let reply = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (recorded.method.clone(), recorded.path.clone());
        state.requests.push(recorded);
        match state.scripts.get_mut(&key) {
            Some(script) if script.replies.len() > 1 => script.replies.pop_front(),
            Some(script) => script.replies.front().cloned(),
            None => None,
        }
        .unwrap_or_else(|| state.default.clone())
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response.into_response()
}
