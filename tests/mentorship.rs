//! The mentorship marketplace end to end on the embedded backend with a fake
//! clock, from the signed samples in `events/` through the real webhook
//! receiver and every function of the registry, with one recording server
//! standing in for Clerk, Discord, Cal.com, Postmark and Slack:
//! - `purchase`: Stripe and PayPal purchases become one pack each;
//! - `onboarding`: the Discord link, the reminder, the flag;
//! - `sessions`: bookings, numbered sessions, the 72 h grace period;
//! - `expiration`: the daily sweep, with and without scheduled sessions.

#[allow(dead_code)] // shared with tests/booking.rs; only part of it is used here
#[path = "booking/support.rs"]
mod support;

#[path = "mentorship/expiration.rs"]
mod expiration;
#[path = "mentorship/onboarding.rs"]
mod onboarding;
#[path = "mentorship/purchase.rs"]
mod purchase;
#[path = "mentorship/sessions.rs"]
mod sessions;
#[path = "mentorship/world.rs"]
mod world;
