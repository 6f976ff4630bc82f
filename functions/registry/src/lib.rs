//! The list of every function Hookflow runs. `hookflow dev`, the router Lambda
//! and `hookflow template check` all read it, so adding a workflow means adding
//! one line here (and its Lambda in `template.yaml`).
//!
//! Workflows take their dependencies ([`Services`]: documents, API clients,
//! settings) at construction; [`functions_with`] and [`registry`] pass them.

use hookflow::{Function, Registry};
use hookflow_clients::Services;

/// Every function definition, built over `services`.
#[must_use]
pub fn functions_with(services: &Services) -> Vec<Function> {
    let mut functions = vec![
        hello_world::function(),
        record_checkout_payment::function(services),
        checkout_side_effects::function(services),
        booking_analytics::function(services),
        mentorship_purchase::function(services),
        create_session_pack::function(services),
        mentorship_onboarding::function(services),
        pack_bookings::function(services),
        complete_session::function(services),
        sweep_expired_packs::function(services),
        expire_pack::function(services),
        email_send_broadcast::function(services),
        user_created::function(services),
        course_webhooks::checkout::function(services),
        course_webhooks::refund::function(services),
        course_webhooks::email_status::function(services),
        post_purchase::function(services),
        discord_account_linked::function(services),
        discord_account_linked::add_role::function(services),
        cohort_entitlement_sync::function(services),
        cohort_entitlement_sync::user_function(services),
        calendar_sync::function(services),
        refund_remove_calendar::function(services),
    ];
    functions.extend(merch::functions(services));
    functions.extend(commerce::functions(services));
    functions
}

/// Every function definition over [`Services::unconfigured`]: for listing
/// ids and triggers (`hookflow functions`, template checks), not for running
/// (their document store and API calls fail).
///
/// # Panics
/// Never in practice: only if the HTTP client's TLS backend cannot start.
#[must_use]
pub fn functions() -> Vec<Function> {
    match Services::unconfigured() {
        Ok(services) => functions_with(&services),
        Err(err) => panic!("cannot build placeholder services: {err}"),
    }
}

/// The validated registry of [`functions_with`] over `services`.
///
/// # Errors
/// The first invalid definition.
pub fn registry(services: &Services) -> hookflow::Result<Registry> {
    Registry::new(functions_with(services))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_function_is_valid_and_unique() {
        let services = hookflow_clients::Services::unconfigured().expect("services");
        let registry = super::registry(&services).expect("valid registry");
        assert_eq!(registry.len(), super::functions().len() * 2 - 1); // + on_failure handlers
    }
}
