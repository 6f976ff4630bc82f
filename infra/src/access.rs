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

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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
        let Some(presented) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
            return false;
        };
        let (a, b) = (presented.trim().as_bytes(), self.0.as_bytes());
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }
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
/// token.
pub async fn require_token(
    State(token): State<AdminToken>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if token.admits(authorization) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(json!({"error": format!("admin API: send `Authorization: Bearer <{ADMIN_TOKEN_VAR}>`")})),
    )
        .into_response()
}

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
}
