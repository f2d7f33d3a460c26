//! Issue #31 over HTTP: providers list their settings, an account's settings are updated with
//! `PATCH` (checked by its provider's spec, verified on request, secrets never returned).

use serde_json::json;

use crate::harness::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_describe_their_settings_and_accounts_are_patched() {
    let s = Server::start().await;
    let admin = Some(s.admin.as_str());
    let (status, list) = s.call("GET", "/api/v1/providers", admin, None).await;
    assert_eq!(status, 200, "{list}");
    let kinds: Vec<&str> = list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "aws-data-exports",
            "azure-cost-exports",
            "file",
            "gcp-billing-export",
            "hyperbilling-aws"
        ],
        "{list}"
    );
    let (status, hb) = s
        .call("GET", "/api/v1/providers/hyperbilling-aws", admin, None)
        .await;
    assert_eq!(status, 200, "{hb}");
    let key = hb["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "key")
        .unwrap();
    assert_eq!(
        (key["required"].clone(), key["secret"].clone()),
        (json!(true), json!(true))
    );
    let (status, _) = s.call("GET", "/api/v1/providers/nimbus", admin, None).await;
    assert_eq!(status, 404);

    let id = s.id_of("service-accounts", "acme-main").await;
    let path = format!("/api/v1/service-accounts/{id}");
    // A plain setting changes; the secret stays (shown by name only).
    let (status, patched) = s
        .call(
            "PATCH",
            &path,
            admin,
            Some(json!({"settings": {"email": "finance@acme.example"}})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["settings"]["email"], "finance@acme.example");
    assert_eq!(patched["secrets"], json!(["key"]));
    assert!(!patched.to_string().contains("demo-key"), "{patched}");
    // Refusals: a setting the provider lacks, a secret given as a plain setting, a bad value,
    // an unknown field, a member, an unknown account.
    for (body, code, needle) in [
        (
            json!({"settings": {"colour": "red"}}),
            422,
            "has no such setting",
        ),
        (
            json!({"settings": {"key": "inline"}}),
            422,
            "it is a secret",
        ),
        (
            json!({"settings": {"endpoint": "ftp://x"}}),
            422,
            "is not an http(s) URL",
        ),
        (json!({"credentials": {}}), 400, "credentials"),
    ] {
        let (status, err) = s.call("PATCH", &path, admin, Some(body)).await;
        assert_eq!(status, code, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
    let (status, _) = s
        .call(
            "PATCH",
            &path,
            Some(s.web_member.as_str()),
            Some(json!({"settings": {"email": "x@y.z"}})),
        )
        .await;
    assert!(status == 403 || status == 404, "{status}");
    let (status, _) = s
        .call(
            "PATCH",
            "/api/v1/service-accounts/ghost",
            admin,
            Some(json!({"settings": {"email": "x@y.z"}})),
        )
        .await;
    assert_eq!(status, 404);
    // A wrong key, verified, is refused and not kept: the account still verifies with its
    // old key once its client id is back.
    let (status, err) = s
        .call(
            "PATCH",
            &path,
            admin,
            Some(json!({"settings": {"email": "ops@acme.example"},
                "secrets": {"key": "wrong-key"}, "verify": true})),
        )
        .await;
    assert_eq!(status, 502, "{err}");
    assert_eq!(err["error"]["code"], "provider_unauthorized", "{err}");
    assert!(!err.to_string().contains("wrong-key"));
    let (status, back) = s
        .call(
            "PATCH",
            &path,
            admin,
            Some(json!({"settings": {"email": "ops@acme.example"}, "verify": true})),
        )
        .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["settings"]["email"], "ops@acme.example");
}
