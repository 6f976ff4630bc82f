//! The list of every function Hookflow runs. `hookflow dev`, the router Lambda
//! and `hookflow template check` all read it, so adding a workflow means adding
//! one line here (and its Lambda in `template.yaml`).

use hookflow::{Function, Registry};

/// Every function definition.
#[must_use]
pub fn functions() -> Vec<Function> {
    vec![hello_world::function()]
}

/// The validated registry of [`functions`].
///
/// # Errors
/// The first invalid definition.
pub fn registry() -> hookflow::Result<Registry> {
    Registry::new(functions())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_function_is_valid_and_unique() {
        let registry = super::registry().expect("valid registry");
        assert_eq!(registry.len(), super::functions().len());
    }
}
