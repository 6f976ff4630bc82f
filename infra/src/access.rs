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
//! (`/login`) takes the token once and keeps it in an `HttpOnly`,
//! `SameSite=Strict` cookie, which the admin routes accept like the header.
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
use subtle::ConstantTimeEq;

/// The variable holding the admin token.
pub const ADMIN_TOKEN_VAR: &str = "HOOKFLOW_ADMIN_TOKEN";
/// Shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// The admin token (never shown by `Debug`).
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

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
}

impl AdminToken {
    /// A token of at least [`MIN_TOKEN_LEN`] characters (trimmed).
    ///
    /// # Errors
    /// [`AccessError::TokenTooShort`].
    pub fn new(token: &str) -> Result<Self, AccessError> {
        let token = token.trim();
        if token.chars().count() < MIN_TOKEN_LEN {
            return Err(AccessError::TokenTooShort);
        }
        Ok(Self(token.into()))
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
        let (a, b) = (presented.trim().as_bytes(), self.0.as_bytes());
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }

    /// Whether a request's headers carry this token: the `Authorization`
    /// header, or the dashboard's sign-in cookie.
    #[must_use]
    pub fn admits_request(&self, headers: &HeaderMap) -> bool {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.admits(authorization)
            || cookie(headers, SESSION_COOKIE).is_some_and(|value| self.is(value))
    }
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
        form.token.trim()
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
        let token = AdminToken::new("0123456789abcdef").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; hookflow_admin=0123456789abcdef".parse().unwrap(),
        );
        assert!(token.admits_request(&headers));
        headers.insert(
            header::COOKIE,
            "hookflow_admin=0123456789abcdeX".parse().unwrap(),
        );
        assert!(!token.admits_request(&headers));
        headers.insert(
            header::COOKIE,
            "xhookflow_admin=0123456789abcdef".parse().unwrap(),
        );
        assert!(!token.admits_request(&headers));
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
