//! `cloudbill domain …` and system-admin tokens: the operator's side of a multi-tenant server.

use crate::harness::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_creates_lists_disables_and_enables_domains() {
    let env = Env::new().await;
    let out = env.run(&["domain", "create", "acme2"]).await;
    out.ok();
    let secret = out.stdout.trim();
    assert!(
        secret.starts_with("cbt_") && !secret.contains('\n'),
        "{secret:?}"
    );
    env.run(&["domain", "create", "acme2"])
        .await
        .fails(1, "a domain called acme2 already exists");
    env.run(&["domain", "create", " "])
        .await
        .fails(2, "domain name");

    // The new domain's first admin token is listed in that domain, not in the default one.
    let listed = env
        .run(&["--domain", "acme2", "--format", "json", "token", "list"])
        .await;
    listed.ok();
    assert_eq!(listed.json()[0]["role"], "admin");
    assert_eq!(listed.json()[0]["label"], "first domain admin");
    let default = env.run(&["--format", "json", "token", "list"]).await;
    default.ok();
    assert_eq!(default.json(), serde_json::json!([]));

    let list = env.run(&["--format", "json", "domain", "list"]).await;
    list.ok();
    let names: Vec<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["acme2", "default"]);

    let off = env
        .run(&["--format", "json", "domain", "disable", "acme2"])
        .await;
    off.ok();
    assert!(off.json()["disabled_at"].is_string(), "{}", off.stdout);
    let on = env
        .run(&["--format", "json", "domain", "enable", "acme2"])
        .await;
    on.ok();
    assert!(on.json()["disabled_at"].is_null());
    env.run(&["domain", "disable", "nowhere"])
        .await
        .fails(1, "domain \"nowhere\" not found");

    // System-admin tokens: made by the operator only, never with a project.
    let sys = env
        .run(&[
            "token",
            "create",
            "--role",
            "system-admin",
            "--label",
            "ops",
        ])
        .await;
    sys.ok();
    assert!(sys.stdout.trim().starts_with("cbt_"));
    env.run(&[
        "token",
        "create",
        "--role",
        "system-admin",
        "--project",
        "web",
    ])
    .await
    .fails(2, "a system-admin token has no project");
    env.run(&["token", "create", "--role", "root"])
        .await
        .fails(2, "admin, project-member, system-admin");
}
