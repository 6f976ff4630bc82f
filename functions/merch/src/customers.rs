//! `sync-user`: Clerk users kept as the shop's customers.
//!
//! On `clerk/user.created` and `clerk/user.updated`: upsert the customer
//! (primary email, names), unless the stored version is newer (Clerk's
//! `updated_at`: deliveries can arrive out of order). On
//! `clerk/user.deleted`: stamp `deletedAt` and keep the record, which past
//! orders still name (a deletion that comes first leaves a tombstone, so a
//! late creation does not bring the user back). One read-modify-write per delivery, so a redelivery
//! changes nothing.

use hookflow::{Failure, Function, NonRetriable};
use hookflow_clients::Services;
use serde_json::{Value, json};

use crate::records::{CUSTOMERS, Customer};

/// The function id.
pub const ID: &str = "sync-user";
/// A user signed up.
pub const CREATED: &str = "clerk/user.created";
/// A user changed their profile.
pub const UPDATED: &str = "clerk/user.updated";
/// A user was deleted.
pub const DELETED: &str = "clerk/user.deleted";

/// The customer a `user.created`/`user.updated` payload describes.
///
/// # Errors
/// A payload without the user's id or `updated_at`.
pub fn customer(user: &Value) -> Result<Customer, NonRetriable> {
    let id = user["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| NonRetriable::new("a Clerk user without id"))?;
    let primary = user["primary_email_address_id"].as_str();
    let email = user["email_addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|address| primary.is_none() || address["id"].as_str() == primary)
        .and_then(|address| address["email_address"].as_str())
        .map(str::to_owned);
    let text = |key: &str| user[key].as_str().map(str::to_owned);
    Ok(Customer {
        id: id.to_owned(),
        email,
        first_name: text("first_name"),
        last_name: text("last_name"),
        clerk_updated_at: user["updated_at"]
            .as_i64()
            .ok_or_else(|| NonRetriable::new("a Clerk user without updated_at"))?,
        deleted_at: None,
    })
}

/// The function definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let docs = services.docs.clone();
    services
        .alert_on_failure(Function::new(ID).name("Sync a Clerk user to the shop"))
        .on_event(CREATED)
        .on_event(UPDATED)
        .on_event(DELETED)
        .retries(3)
        .handler(move |ctx| {
            let docs = docs.clone();
            async move {
                let body = &ctx.event.data;
                let user = &body["data"];
                let (name, at) = (ctx.event.name.clone(), body["timestamp"].as_i64());
                let incoming = if name == DELETED {
                    None
                } else {
                    Some(customer(user).non_retriable()?)
                };
                let id = user["id"]
                    .as_str()
                    .ok_or_else(|| NonRetriable::new("a Clerk user without id"))?
                    .to_owned();
                let key = id.clone();
                let outcome: String = ctx
                    .step
                    .run("upsert-customer", move || async move {
                        let written = docs
                            .update_with::<Customer, _, _>(CUSTOMERS, &key, |stored| {
                                match &incoming {
                                    Some(fresh) => match stored {
                                        Some(old)
                                            if old.clerk_updated_at >= fresh.clerk_updated_at =>
                                        {
                                            (None, "stale")
                                        }
                                        Some(old) => (
                                            Some(Customer {
                                                deleted_at: old.deleted_at,
                                                ..fresh.clone()
                                            }),
                                            "updated",
                                        ),
                                        None => (Some(fresh.clone()), "created"),
                                    },
                                    None => match stored {
                                        Some(old) if old.deleted_at.is_some() => (None, "deleted"),
                                        Some(old) => (
                                            Some(Customer {
                                                deleted_at: Some(at.unwrap_or(0)),
                                                ..old
                                            }),
                                            "deleted",
                                        ),
                                        // Deleted before we ever saw it: a tombstone,
                                        // so a late `user.created` does not bring it back.
                                        None => (
                                            Some(Customer {
                                                id: key.clone(),
                                                email: None,
                                                first_name: None,
                                                last_name: None,
                                                clerk_updated_at: at.unwrap_or(0),
                                                deleted_at: Some(at.unwrap_or(0)),
                                            }),
                                            "deleted",
                                        ),
                                    },
                                }
                            })
                            .await?;
                        Ok(written.to_owned())
                    })
                    .await?;
                Ok(json!({ "customerId": id, "outcome": outcome }))
            }
        })
}
