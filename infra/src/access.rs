//! Who may use `hookflow dev`'s admin API.
//!
//! Webhook routes (`/webhooks/{provider}`) and `/health` are always open:
//! providers must reach them, and signatures protect them. Every other route
//! (events, runs, cancel, replay, redrive, pause, documents) is the admin
//! API. On loopback it is open, as a development server's should be; bound
//! to anything else, `hookflow dev` refuses to start unless
//! `HOOKFLOW_ADMIN_TOKEN` is set, and then every admin request needs
//! `Authorization: Bearer <token>` (compared in constant time). A token set
//! on loopback is enforced too.
//!
//! The dashboard is the same admin API in a browser: its sign-in page
//! (`/login`) takes the token once and keeps a digest of it in an
//! `HttpOnly`, `SameSite=Strict` cookie, which the admin routes accept like
//! the header. Open on loopback, the admin routes answer only requests
//! addressed to a loopback name (DNS rebinding).
//! Whatever the bind, a browser's cross-site request that would change
//! something (any method but GET and HEAD) is refused with 403, so a web
//! page cannot drive a local `hookflow dev` through its visitor's browser.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The variable holding the admin token.
pub const ADMIN_TOKEN_VAR: &str = "HOOKFLOW_ADMIN_TOKEN";
/// Shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// The admin token (never shown by `Debug`), and the sign-in cookie value
/// derived from it.
#[derive(Clone)]
pub struct AdminToken {
    token: Arc<str>,
    session: Arc<str>,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

/// Why `hookflow dev` will not start as configured.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Bound beyond loopback without a token.
    #[error(
        "hookflow dev listens on {0}, beyond this machine: set {ADMIN_TOKEN_VAR} (at least {MIN_TOKEN_LEN} characters) so its admin API needs `Authorization: Bearer <token>`, or listen on 127.0.0.1"
    )]
    TokenRequired(IpAddr),
    /// A token too short to resist guessing.
    #[error("{ADMIN_TOKEN_VAR} is shorter than {MIN_TOKEN_LEN} characters")]
    TokenTooShort,
    /// A token an HTTP header cannot carry.
    #[error("{ADMIN_TOKEN_VAR} must be printable ASCII without spaces (an HTTP header carries it)")]
    TokenNotAscii,
}

impl AdminToken {
    /// A token of at least [`MIN_TOKEN_LEN`] characters (trimmed).
    ///
    /// # Errors
    /// [`AccessError::TokenTooShort`].
    pub fn new(token: &str) -> Result<Self, AccessError> {
        let token = token.trim();
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AccessError::TokenNotAscii);
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(AccessError::TokenTooShort);
        }
        // The cookie carries a digest, not the token: cookie-safe whatever
        // the token's characters, and useless as the API's header.
        let digest = Sha256::digest(format!("hookflow-dashboard-session:{token}"));
        Ok(Self {
            token: token.into(),
            session: hex::encode(digest).into(),
        })
    }

    /// Whether an `Authorization` header value carries this token.
    #[must_use]
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|presented| self.is(presented))
    }

    /// Whether `presented` is this token (constant time).
    fn is(&self, presented: &str) -> bool {
        same(presented.trim(), &self.token)
    }

    /// Whether a request's headers carry this token: the `Authorization`
    /// header, or the dashboard's sign-in cookie.
    #[must_use]
    pub fn admits_request(&self, headers: &HeaderMap) -> bool {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.admits(authorization)
            || cookie(headers, SESSION_COOKIE).is_some_and(|value| same(value, &self.session))
    }
}

/// Constant-time equality.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The dashboard's sign-in cookie.
pub const SESSION_COOKIE: &str = "hookflow_admin";

/// The value of cookie `name` in a request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The admin token `hookflow dev` enforces when listening on `host` with
/// `token` configured: `None` (open) only on loopback without a token.
///
/// # Errors
/// [`AccessError`]: beyond loopback without a token, or a short token.
pub fn admin_token_for(
    host: IpAddr,
    token: Option<&str>,
) -> Result<Option<AdminToken>, AccessError> {
    match token.map(str::trim).filter(|t| !t.is_empty()) {
        Some(token) => AdminToken::new(token).map(Some),
        None if host.is_loopback() => Ok(None),
        None => Err(AccessError::TokenRequired(host)),
    }
}

/// Middleware for the admin routes: `401` unless the request carries the
/// token; a browser asking for a page is sent to the sign-in page instead.
pub async fn require_token(
    State(token): State<AdminToken>,
    request: Request,
    next: Next,
) -> Response {
    if token.admits_request(request.headers()) {
        return next.run(request).await;
    }
    let wants_page = request.method() == Method::GET
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    if wants_page {
        return Redirect::to("/login").into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(json!({"error": format!("admin API: send `Authorization: Bearer <{ADMIN_TOKEN_VAR}>`")})),
    )
        .into_response()
}

/// Middleware for the admin routes: `403` for a browser's cross-site
/// request that changes something (its `Sec-Fetch-Site` says so, or its
/// `Origin` is not the host it was sent to). Requests without those
/// headers (curl, the CLI, scripts) are not browsers' and pass.
pub async fn same_origin(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) || !cross_site(request.headers()) {
        return next.run(request).await;
    }
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({"error": "cross-site request refused: use the dashboard itself, or a client that is not a browser"})),
    )
        .into_response()
}

/// Middleware for the admin routes of a `hookflow dev` open on loopback
/// (no token): `403` unless the request names a loopback host. A web page
/// whose own name an attacker re-points at 127.0.0.1 (DNS rebinding) is
/// same-origin to itself, so the origin check alone would not stop it; its
/// requests carry its own name as `Host`.
pub async fn loopback_host(request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    if host.is_none_or(is_loopback_host) {
        return next.run(request).await;
    }
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({"error": format!("hookflow dev answers its admin API on loopback names only (localhost, 127.0.0.1, [::1]); to reach it by another name, set {ADMIN_TOKEN_VAR}")})),
    )
        .into_response()
}

fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(HeaderName::from_static("sec-fetch-site")) {
        return !matches!(site, "same-origin" | "none");
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => {
            let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            !authority.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Form of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    /// The admin token.
    pub token: String,
}

/// The sign-in routes (`GET`/`POST /login`), open to all: with a token,
/// the right one sets the cookie; without one (loopback), there is nothing
/// to sign in to.
pub fn sign_in_routes<S: Clone + Send + Sync + 'static>(token: Option<AdminToken>) -> Router<S> {
    Router::new()
        .route("/login", get(sign_in_page).post(sign_in))
        .with_state(token)
}

async fn sign_in_page(State(token): State<Option<AdminToken>>) -> Response {
    if token.is_none() {
        return Redirect::to("/").into_response();
    }
    Html(SIGN_IN_PAGE.replace("{message}", "")).into_response()
}

async fn sign_in(State(token): State<Option<AdminToken>>, Form(form): Form<SignIn>) -> Response {
    let Some(token) = token else {
        return Redirect::to("/").into_response();
    };
    if !token.is(&form.token) {
        let page = SIGN_IN_PAGE.replace("{message}", "<p class=error>That is not the token.</p>");
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        token.session
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

const SIGN_IN_PAGE: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Sign in · hookflow dev</title><style>body{font:14px system-ui,sans-serif;max-width:360px;margin:80px auto}
input{width:100%;padding:6px;margin:8px 0}.error{color:#cf222e}</style></head><body>
<h1>hookflow dev</h1><form method="post" action="/login">{message}
<label>Admin token (HOOKFLOW_ADMIN_TOKEN)<input type="password" name="token" autofocus required></label>
<button>Sign in</button></form></body></html>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_open_and_anything_else_needs_a_token() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert!(admin_token_for(loopback, None).unwrap().is_none());
        assert!(admin_token_for(v6, Some(" ")).unwrap().is_none());
        let err = admin_token_for(any, None).unwrap_err();
        assert!(err.to_string().contains(ADMIN_TOKEN_VAR), "{err}");
        assert!(matches!(
            admin_token_for(any, Some("short")),
            Err(AccessError::TokenTooShort)
        ));
        let token = admin_token_for(any, Some("0123456789abcdef"))
            .unwrap()
            .unwrap();
        assert!(token.admits(Some("Bearer 0123456789abcdef")));
        assert!(!token.admits(Some("Bearer 0123456789abcdeF")));
        assert!(!token.admits(Some("0123456789abcdef")));
        assert!(!token.admits(Some("Bearer 0123456789abcde")));
        assert!(!token.admits(None));
        assert_eq!(format!("{token:?}"), "AdminToken([redacted])");
    }

    #[test]
    fn the_sign_in_cookie_admits_like_the_header() {
        let token = AdminToken::new("0123;456789abcdef=").unwrap();
        let session = token.session.to_string();
        assert!(!session.contains("0123"), "the cookie is not the token");
        let mut headers = HeaderMap::new();
        let cookie = |value: String| value.parse::<HeaderValue>().unwrap();
        headers.insert(
            header::COOKIE,
            cookie(format!("a=1; hookflow_admin={session}")),
        );
        assert!(token.admits_request(&headers));
        headers.insert(
            header::COOKIE,
            cookie("hookflow_admin=0123;456789abcdef=".into()),
        );
        assert!(
            !token.admits_request(&headers),
            "the raw token is not a session"
        );
        headers.insert(header::COOKIE, cookie(format!("xhookflow_admin={session}")));
        assert!(!token.admits_request(&headers));
    }

    #[test]
    fn a_token_a_header_cannot_carry_is_refused() {
        assert!(matches!(
            AdminToken::new("0123456789abcdef é"),
            Err(AccessError::TokenNotAscii)
        ));
        assert!(matches!(
            AdminToken::new("0123456789 abcdef"),
            Err(AccessError::TokenNotAscii)
        ));
        assert!(AdminToken::new("0123;456789abcdef=").is_ok());
    }

    #[test]
    fn only_loopback_names_reach_an_open_dev_server() {
        for host in [
            "localhost:8288",
            "127.0.0.1:8288",
            "127.0.0.1",
            "[::1]:8288",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:8288",
            "10.0.0.2:8288",
            "localhost.evil.example",
            "[2001:db8::1]:80",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn only_a_browsers_cross_site_request_is_cross_site() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert!(!cross_site(&headers(&[])), "curl, scripts, the CLI");
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!cross_site(&headers(&[
            ("origin", "http://127.0.0.1:8288"),
            ("host", "127.0.0.1:8288")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:8288")
        ])));
    }
}
