//! The records a purchase writes: organization membership, entitlements,
//! cohort enrollment; and the coupon entitlements it revokes. Each write is
//! idempotent (create-if-absent under an id derived from the purchase and
//! resource, or a read-modify-write that changes nothing the second time).

use std::collections::BTreeMap;

use course::{
    COHORT, ContentResource, ENROLLMENTS, ENTITLEMENTS, Enrollment, Entitlement, LEARNER_ROLE,
    MEMBERSHIPS, Membership, ORGANIZATIONS, Organization, Purchase, User, enrollment_key,
    entitlement_id, entitlement_key, entitlements_of, membership_key, nested_ids,
    personal_organization_id,
};
use hookflow_docs::DocStore;
use serde::{Deserialize, Serialize};

/// The Checkout Session metadata key listing the entitlement coupons a
/// purchase used up (comma-separated ids).
pub const USED_COUPONS_KEY: &str = "usedCouponIds";

/// The coupon ids in a Checkout Session's metadata.
#[must_use]
pub fn used_coupon_ids(metadata: &BTreeMap<String, String>) -> Vec<String> {
    metadata
        .get(USED_COUPONS_KEY)
        .map(|ids| {
            ids.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Revokes (stamps `deletedAt` on) `user_id`'s active entitlements granted by
/// the coupons `used`; returns how many it revoked.
///
/// # Errors
/// Store failures.
pub async fn revoke_coupon_entitlements(
    docs: &DocStore,
    user_id: &str,
    used: &[String],
) -> anyhow::Result<usize> {
    if used.is_empty() {
        return Ok(0);
    }
    let owned: Vec<Entitlement> = docs
        .list_prefixed(ENTITLEMENTS, &entitlements_of(user_id))
        .await?;
    let now = docs.now_ms();
    let mut revoked = 0;
    for entitlement in owned {
        if entitlement.source_type != "COUPON"
            || !entitlement.is_active()
            || !used.contains(&entitlement.source_id)
        {
            continue;
        }
        let key = entitlement_key(user_id, &entitlement.id);
        docs.update::<Entitlement, _>(ENTITLEMENTS, &key, |current| {
            let mut current = current?;
            current.deleted_at.is_none().then(|| {
                current.deleted_at = Some(now);
                current
            })
        })
        .await?;
        revoked += 1;
    }
    Ok(revoked)
}

/// Makes `user_id` a learner of `organization_id`, or of their personal
/// organization (created if missing) when the purchase names none; returns
/// the organization's id.
///
/// # Errors
/// Store failures.
pub async fn ensure_membership(
    docs: &DocStore,
    user_id: &str,
    organization_id: Option<&str>,
    invited_by: Option<&str>,
) -> anyhow::Result<String> {
    let organization_id = match organization_id {
        Some(id) => id.to_owned(),
        None => {
            let id = personal_organization_id(user_id);
            let personal = Organization {
                id: id.clone(),
                name: format!("Personal ({user_id})"),
                personal: true,
            };
            docs.create(ORGANIZATIONS, &id, &personal).await?;
            id
        }
    };
    let key = membership_key(&organization_id, user_id);
    docs.update::<Membership, _>(MEMBERSHIPS, &key, |current| {
        let mut membership = current.unwrap_or_else(|| Membership {
            organization_id: organization_id.clone(),
            user_id: user_id.to_owned(),
            invited_by_id: invited_by.map(str::to_owned),
            roles: Vec::new(),
        });
        if membership.roles.iter().any(|role| role == LEARNER_ROLE) {
            return None;
        }
        membership.roles.push(LEARNER_ROLE.to_owned());
        Some(membership)
    })
    .await?;
    Ok(organization_id)
}

/// The entitlements one purchase grants one user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    purchase_id: String,
    user_id: String,
    organization_id: String,
}

impl Grant {
    /// Grants of `purchase` to `user` in `organization_id`.
    #[must_use]
    pub fn new(purchase: &Purchase, user: &User, organization_id: &str) -> Self {
        Self {
            purchase_id: purchase.id.clone(),
            user_id: user.id.clone(),
            organization_id: organization_id.to_owned(),
        }
    }

    fn entitlement(&self, kind: &str, resource_id: &str) -> Entitlement {
        Entitlement {
            id: entitlement_id(&self.purchase_id, kind, resource_id),
            user_id: self.user_id.clone(),
            entitlement_type: kind.to_owned(),
            resource_id: Some(resource_id.to_owned()),
            source_type: "PURCHASE".into(),
            source_id: self.purchase_id.clone(),
            organization_id: Some(self.organization_id.clone()),
            cohort_id: None,
            discord_role_id: None,
            deleted_at: None,
        }
    }

    /// Grants the Discord role `role` of `resource_id`; returns its id.
    ///
    /// # Errors
    /// Store failures.
    pub async fn discord_role(
        &self,
        docs: &DocStore,
        kind: &str,
        resource_id: &str,
        role: &str,
    ) -> anyhow::Result<String> {
        let entitlement = Entitlement {
            discord_role_id: Some(role.to_owned()),
            ..self.entitlement(kind, resource_id)
        };
        let key = entitlement_key(&self.user_id, &entitlement.id);
        docs.create(ENTITLEMENTS, &key, &entitlement).await?;
        Ok(entitlement.id)
    }

    /// Grants content access to `root` and every resource nested in it
    /// ([`nested_ids`]); a cohort also
    /// enrolls the user, so later changes to it reach them. Returns the
    /// entitlement ids, root first.
    ///
    /// # Errors
    /// Store failures.
    pub async fn content_access(
        &self,
        docs: &DocStore,
        kind: &str,
        root: &ContentResource,
    ) -> anyhow::Result<Vec<String>> {
        let cohort_id = (root.kind == COHORT).then(|| root.id.clone());
        let mut granted = Vec::new();
        for resource_id in nested_ids(docs, root).await? {
            let entitlement = Entitlement {
                cohort_id: cohort_id.clone(),
                ..self.entitlement(kind, &resource_id)
            };
            let key = entitlement_key(&self.user_id, &entitlement.id);
            docs.create(ENTITLEMENTS, &key, &entitlement).await?;
            granted.push(entitlement.id);
        }
        if let Some(cohort_id) = cohort_id {
            let enrollment = Enrollment {
                cohort_id: cohort_id.clone(),
                user_id: self.user_id.clone(),
                purchase_id: self.purchase_id.clone(),
                organization_id: Some(self.organization_id.clone()),
            };
            docs.create(
                ENROLLMENTS,
                &enrollment_key(&cohort_id, &self.user_id),
                &enrollment,
            )
            .await?;
        }
        Ok(granted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_coupons_are_read_from_the_session_metadata() {
        let metadata = BTreeMap::from([(USED_COUPONS_KEY.to_owned(), " c1, ,c2".to_owned())]);
        assert_eq!(used_coupon_ids(&metadata), ["c1", "c2"]);
        assert!(used_coupon_ids(&BTreeMap::new()).is_empty());
    }
}
