//! Keeping a cohort's learners in step with the cohort, as a fan-out:
//! - `cohort-entitlement-sync` (`cohort/updated`: `cohortId`, `changes`):
//!   loads the cohort and the resources now in it, lists its enrolled
//!   learners and sends one `cohort-entitlement/sync.user` per learner (in
//!   sends of up to 1,000 events), so each learner is its own run, retried
//!   on its own;
//! - `cohort-entitlement-sync-user` (`cohort-entitlement/sync.user`:
//!   `cohortId`, `userId`, `cohortResourceIds`): grants the learner content
//!   access to every resource in the cohort as it is when the step runs (the
//!   event's list only when the cohort is gone) (a revoked grant comes back)
//!   and revokes it for those taken out, keeping the type, source and
//!   organization of the learner's grant of the cohort itself.
//!
//! Invariants: the events' ids derive from the run and the send, so a replay
//! sends none twice; the per-user sync only moves a learner's grants
//! towards the list it was given, so running it twice changes nothing more.

use std::collections::BTreeSet;

use course::{
    COHORT, ContentResource, ENROLLMENTS, ENTITLEMENTS, Enrollment, Entitlement, RESOURCES,
    enrollments_in, entitlement_id, entitlement_key, entitlements_of, nested_ids,
};
use hookflow::{Ctx, Event, Failure, Function, NonRetriable};
use hookflow_clients::Services;
use hookflow_docs::DocStore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The fan-out's function id.
pub const ID: &str = "cohort-entitlement-sync";
/// The per-learner function id.
pub const USER_ID: &str = "cohort-entitlement-sync-user";
/// The event that starts the fan-out.
pub const TRIGGER: &str = "cohort/updated";
/// One learner's sync.
pub const SYNC_USER: &str = "cohort-entitlement/sync.user";
/// Events per send step.
pub const SEND_CHUNK: usize = 1_000;

/// The data of one learner's sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncUser {
    /// The cohort.
    pub cohort_id: String,
    /// The learner.
    pub user_id: String,
    /// The resources in the cohort now (the cohort itself first).
    pub cohort_resource_ids: Vec<String>,
}

/// The fan-out's definition.
#[must_use]
pub fn function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(ID).name("Sync a cohort's learners after a change"))
        .on_event(TRIGGER)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move { fan_out(&services, ctx).await }
        })
}

/// The per-learner definition.
#[must_use]
pub fn user_function(services: &Services) -> Function {
    let services = services.clone();
    services
        .alert_on_failure(Function::new(USER_ID).name("Sync one learner's cohort access"))
        .on_event(SYNC_USER)
        .retries(3)
        .handler(move |ctx| {
            let services = services.clone();
            async move {
                let sync: SyncUser =
                    serde_json::from_value(ctx.event.data.clone()).non_retriable()?;
                let docs = services.docs.clone();
                let changed = ctx
                    .step
                    .run("sync-entitlements", move || async move {
                        // The cohort as it is now, not as the event saw it:
                        // with two changes close together, a learner's older
                        // sync running last must not undo the newer one.
                        let mut sync = sync;
                        if let Some((cohort, _)) = docs
                            .get::<ContentResource>(RESOURCES, &sync.cohort_id)
                            .await?
                        {
                            sync.cohort_resource_ids = nested_ids(&docs, &cohort).await?;
                        }
                        sync_user(&docs, &sync).await
                    })
                    .await?;
                Ok(changed)
            }
        })
}

async fn fan_out(services: &Services, ctx: Ctx) -> anyhow::Result<Value> {
    let cohort_id = ctx.event.data["cohortId"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| NonRetriable::new("cohort/updated without cohortId"))?
        .to_owned();
    let (docs, id) = (services.docs.clone(), cohort_id.clone());
    let resource_ids: Vec<String> = ctx
        .step
        .run("load-cohort-resources", move || async move {
            match docs.get::<ContentResource>(RESOURCES, &id).await? {
                Some((cohort, _)) if cohort.kind == COHORT => Ok(nested_ids(&docs, &cohort).await?),
                Some(_) => Err(NonRetriable::new(format!("{id} is not a cohort")).into()),
                None => Err(NonRetriable::new("Cohort not found").into()),
            }
        })
        .await?;
    let (docs, id) = (services.docs.clone(), cohort_id.clone());
    let learners: Vec<String> = ctx
        .step
        .run("list-enrolled-users", move || async move {
            let enrolled: Vec<Enrollment> = docs
                .list_prefixed(ENROLLMENTS, &enrollments_in(&id))
                .await?;
            let unique: BTreeSet<String> = enrolled.into_iter().map(|e| e.user_id).collect();
            Ok(unique.into_iter().collect())
        })
        .await?;
    for (n, chunk) in learners.chunks(SEND_CHUNK).enumerate() {
        let events = chunk.iter().map(|user_id| {
            let sync = SyncUser {
                cohort_id: cohort_id.clone(),
                user_id: user_id.clone(),
                cohort_resource_ids: resource_ids.clone(),
            };
            Event::new(SYNC_USER, serde_json::to_value(sync).unwrap_or_default())
        });
        ctx.step
            .send_event(&format!("sync-users-{n}"), events)
            .await?;
    }
    Ok(json!({ "cohortId": cohort_id, "users": learners.len(), "resources": resource_ids.len() }))
}

/// Moves `sync.user_id`'s grants for the cohort to `sync.cohort_resource_ids`;
/// returns what it added and removed.
///
/// A learner with no active grant of the cohort itself (refunded, say) is
/// skipped: there is no grant to copy the source from.
///
/// # Errors
/// Store failures.
pub async fn sync_user(docs: &DocStore, sync: &SyncUser) -> anyhow::Result<Value> {
    let owned: Vec<Entitlement> = docs
        .list_prefixed(ENTITLEMENTS, &entitlements_of(&sync.user_id))
        .await?;
    let of_cohort: Vec<&Entitlement> = owned
        .iter()
        .filter(|e| e.cohort_id.as_deref() == Some(sync.cohort_id.as_str()))
        .collect();
    let Some(template) = of_cohort
        .iter()
        .find(|e| e.resource_id.as_deref() == Some(sync.cohort_id.as_str()) && e.is_active())
    else {
        return Ok(json!({ "skipped": "the learner has no active access to the cohort" }));
    };
    let wanted: BTreeSet<&str> = sync
        .cohort_resource_ids
        .iter()
        .map(String::as_str)
        .collect();
    let now = docs.now_ms();
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for resource_id in &sync.cohort_resource_ids {
        let id = entitlement_id(&template.source_id, &template.entitlement_type, resource_id);
        let grant = Entitlement {
            id: id.clone(),
            resource_id: Some(resource_id.clone()),
            deleted_at: None,
            ..(*template).clone()
        };
        let written = docs
            .update::<Entitlement, _>(
                ENTITLEMENTS,
                &entitlement_key(&sync.user_id, &id),
                |current| match current {
                    Some(current) if current.is_active() => None,
                    Some(current) => Some(Entitlement {
                        deleted_at: None,
                        ..current
                    }),
                    None => Some(grant.clone()),
                },
            )
            .await?;
        if written.is_some() {
            added.push(resource_id.clone());
        }
    }
    for entitlement in of_cohort {
        let Some(resource_id) = entitlement.resource_id.as_deref() else {
            continue;
        };
        if !entitlement.is_active() || wanted.contains(resource_id) {
            continue;
        }
        let key = entitlement_key(&sync.user_id, &entitlement.id);
        docs.update::<Entitlement, _>(ENTITLEMENTS, &key, |current| {
            let current = current?;
            current.is_active().then_some(Entitlement {
                deleted_at: Some(now),
                ..current
            })
        })
        .await?;
        removed.push(resource_id.to_owned());
    }
    Ok(json!({ "userId": sync.user_id, "added": added, "removed": removed }))
}
