//! Integration tests for the webhook receivers: every provider's genuine
//! sample is accepted; forged, stale, truncated or unsigned deliveries are
//! rejected with nothing reaching the sink; the samples in `events/` are
//! exactly what the generator writes.

mod samples;
mod support;

mod cal;
mod clerk;
mod discord;
mod events;
mod fuzz;
mod handle;
mod paypal;
mod postmark;
mod printify;
mod shopify;
mod stripe;
