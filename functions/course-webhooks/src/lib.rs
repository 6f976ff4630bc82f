//! The course platform's webhooks, each its own function (and Lambda):
//! - [`checkout`] (`course-checkout`): a paid Stripe Checkout Session for a
//!   course product becomes a purchase (and a team's bulk coupon when it
//!   bought seats) and `purchase/created`;
//! - [`refund`] (`course-refund`): a refunded charge marks its purchase
//!   refunded and emits `stripe/refund-processed`;
//! - [`email_status`] (`course-email-status`): Postmark bounces and
//!   deliveries are recorded on the address owner's newsletter preference;
//!   a hard bounce or spam complaint turns it off.
//!
//! Course checkouts and charges are told from the other apps' by their
//! metadata: the storefront sets `productId` on the session and on the
//! payment intent (`payment_intent_data.metadata`).

pub mod checkout;
pub mod email_status;
pub mod refund;
