//! One module per provider. Each exposes `verify` (signature or credentials,
//! on the raw body, before any parsing), `normalize` (verified body → events)
//! and `receive` (both), plus its header parsers.

pub mod cal;
pub mod clerk;
pub mod discord;
pub mod paypal;
pub mod postmark;
pub mod printify;
pub mod shopify;
pub mod stripe;
