//! The one Lambda binary every Hookflow Lambda runs (`bootstrap`, built once):
//! its environment says which role it plays.
//!
//! | `HOOKFLOW_ROLE` | with | serves |
//! |---|---|---|
//! | `webhook` | `HOOKFLOW_PROVIDER` (`stripe`, `cal`, ...) | `POST /webhooks/<provider>`: verify, store, acknowledge |
//! | `router` | | the router queue: waits, `cancel_on`, triggers, new runs |
//! | `worker` | `HOOKFLOW_FUNCTION_ID` | the function's queue: its runs (and its `-on-failure` handler's) |

use hookflow_webhooks::Provider;

/// The variable naming the role.
pub const ROLE_ENV: &str = "HOOKFLOW_ROLE";
/// The variable naming a webhook Lambda's provider.
pub const PROVIDER_ENV: &str = "HOOKFLOW_PROVIDER";
/// The variable naming a worker Lambda's function.
pub const FUNCTION_ENV: &str = "HOOKFLOW_FUNCTION_ID";

/// What a Lambda does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A provider's webhook endpoint.
    Webhook(Provider),
    /// The event router.
    Router,
    /// One workflow function's worker.
    Worker(String),
}

/// The environment does not say what the Lambda is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoleError {
    /// A variable is missing.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A variable has a value no role has.
    #[error("{var} is `{value}`: {expected}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What it may be.
        expected: String,
    },
}

impl Role {
    /// The role the environment describes, read through `lookup`.
    ///
    /// # Errors
    /// [`RoleError`] naming the missing or invalid variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, RoleError> {
        let var = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(RoleError::Missing(name))
        };
        let role = var(ROLE_ENV)?;
        match role.as_str() {
            "webhook" => {
                let name = var(PROVIDER_ENV)?;
                Provider::from_path(&name)
                    .map(Role::Webhook)
                    .map_err(|_| RoleError::Invalid {
                        var: PROVIDER_ENV,
                        value: name,
                        expected: format!(
                            "one of {}",
                            Provider::ALL.map(|p| p.as_str()).join(", ")
                        ),
                    })
            }
            "router" => Ok(Role::Router),
            "worker" => Ok(Role::Worker(var(FUNCTION_ENV)?)),
            _ => Err(RoleError::Invalid {
                var: ROLE_ENV,
                value: role,
                expected: "webhook, router or worker".into(),
            }),
        }
    }
}

/// Runs the Lambda the environment describes until the runtime stops it.
///
/// # Errors
/// Start-up configuration errors (naming the variable), or the runtime's.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    match Role::from_lookup(|name| std::env::var(name).ok())? {
        Role::Webhook(provider) => hookflow_aws::lambda::run_webhook_with(provider, registry).await,
        Role::Router => hookflow_aws::lambda::run_worker_with(registry).await,
        Role::Worker(function_id) => {
            hookflow_aws::lambda::run_worker_with(move |docs| {
                let registry = registry(docs)?;
                if registry.get(&function_id).is_none() {
                    return Err(format!(
                        "{FUNCTION_ENV} is `{function_id}`, which the registry does not have"
                    )
                    .into());
                }
                Ok(registry)
            })
            .await
        }
    }
}

/// Every function, over the services this Lambda's environment configures.
fn registry(docs: hookflow_docs::DocStore) -> Result<hookflow::Registry, lambda_runtime::Error> {
    let services = hookflow_clients::Services::from_env(docs, &hookflow_clients::process_env)?;
    Ok(hookflow_registry::registry(&services)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_environment_picks_the_role() {
        let role = |vars: &[(&str, &str)]| Role::from_lookup(env(vars));
        assert_eq!(
            role(&[
                ("HOOKFLOW_ROLE", "webhook"),
                ("HOOKFLOW_PROVIDER", "stripe")
            ]),
            Ok(Role::Webhook(Provider::Stripe))
        );
        assert_eq!(role(&[("HOOKFLOW_ROLE", "router")]), Ok(Role::Router));
        assert_eq!(
            role(&[
                ("HOOKFLOW_ROLE", "worker"),
                ("HOOKFLOW_FUNCTION_ID", "expire-pack")
            ]),
            Ok(Role::Worker("expire-pack".into()))
        );
    }

    #[test]
    fn a_missing_or_wrong_variable_is_named() {
        let err = |vars: &[(&str, &str)]| Role::from_lookup(env(vars)).unwrap_err().to_string();
        assert!(err(&[]).contains("HOOKFLOW_ROLE"));
        assert!(err(&[("HOOKFLOW_ROLE", "worker")]).contains("HOOKFLOW_FUNCTION_ID"));
        assert!(err(&[("HOOKFLOW_ROLE", "webhook")]).contains("HOOKFLOW_PROVIDER"));
        let wrong = err(&[
            ("HOOKFLOW_ROLE", "webhook"),
            ("HOOKFLOW_PROVIDER", "github"),
        ]);
        assert!(
            wrong.contains("`github`") && wrong.contains("stripe"),
            "{wrong}"
        );
        assert!(err(&[("HOOKFLOW_ROLE", "cron")]).contains("webhook, router or worker"));
    }
}
