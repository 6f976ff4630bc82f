//! The clients against `testing::TestServer`: the requests they actually send,
//! the answers they decode, and how their errors classify for the engine.

mod cal;
mod clerk;
mod commerce;
mod config;
mod discord;
mod email;
mod errors;
mod google_calendar;
mod posthog;
mod printify;
mod resend;
mod slack;
mod stripe;

use hookflow::failure::{Verdict, classify};
use hookflow_clients::testing::TestServer;
use hookflow_clients::{ClientError, Clients};

/// A fresh server and every client pointed at it.
async fn setup() -> (TestServer, Clients) {
    let server = TestServer::start().await;
    let clients = server.clients();
    (server, clients)
}

/// What the engine does when a step returns `err` with `?`.
fn engine_verdict(err: ClientError) -> Verdict {
    classify(&anyhow::Error::from(err))
}
