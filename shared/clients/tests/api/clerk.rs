use hookflow::failure::Verdict;
use hookflow_clients::testing::{CLERK_KEY, Reply};
use serde_json::json;

use crate::{engine_verdict, setup};

fn user_json(metadata: &serde_json::Value) -> serde_json::Value {
    json!({
        "id": "user_1", "object": "user",
        "primary_email_address_id": "idn_2",
        "email_addresses": [
            {"id": "idn_1", "email_address": "old@example.com"},
            {"id": "idn_2", "email_address": "ada@example.com"},
        ],
        "first_name": "Ada", "last_name": null,
        "public_metadata": metadata,
    })
}

#[tokio::test]
async fn get_user_picks_the_primary_email() {
    let (server, clients) = setup().await;
    server.on(
        "GET",
        "/clerk/v1/users/user_1",
        Reply::json(200, &user_json(&json!(null))),
    );

    let user = clients.clerk.get_user("user_1").await.unwrap();

    let req = &server.requests_to("GET", "/clerk/v1/users/user_1")[0];
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {CLERK_KEY}").as_str())
    );
    assert_eq!(user.id, "user_1");
    assert_eq!(user.primary_email.as_deref(), Some("ada@example.com"));
    assert_eq!(user.first_name.as_deref(), Some("Ada"));
    assert_eq!(user.last_name, None);
    assert_eq!(user.public_metadata, json!({}));
}

#[tokio::test]
async fn update_public_metadata_patches_the_metadata_endpoint() {
    let (server, clients) = setup().await;
    let path = "/clerk/v1/users/user_1/metadata";
    let granted = json!({"dashboardAccess": true});
    server.on("PATCH", path, Reply::json(200, &user_json(&granted)));

    let user = clients
        .clerk
        .update_public_metadata("user_1", granted.clone())
        .await
        .unwrap();

    let req = &server.requests_to("PATCH", path)[0];
    assert_eq!(
        req.json(),
        json!({"public_metadata": {"dashboardAccess": true}})
    );
    assert_eq!(user.public_metadata, granted);
}

#[tokio::test]
async fn an_unknown_user_is_final() {
    let (server, clients) = setup().await;
    server.on(
        "GET",
        "/clerk/v1/users/user_x",
        Reply::json(
            404,
            &json!({"errors": [{"message": "not found", "code": "resource_not_found"}]}),
        ),
    );

    let err = clients.clerk.get_user("user_x").await.unwrap_err();

    assert_eq!(
        err.as_status().unwrap().excerpt(),
        "resource_not_found: not found"
    );
    assert_eq!(engine_verdict(err), Verdict::Final);
}
