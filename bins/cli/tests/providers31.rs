//! Issue #31 from the command line: providers list their settings, accounts are added and
//! updated with `--setting`/`--secret-stdin` (Hyperbilling's own flags are its spelling of the
//! same settings), and no secret is ever printed.

use crate::harness::{Env, KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_list_their_settings_and_accounts_take_them() {
    let env = Env::new().await;
    env.run(&["billing", "enable"]).await.ok();
    env.run(&["project", "create", "web"]).await.ok();

    // The providers with their settings, as JSON and as a table.
    let list = env
        .run(&["provider", "list", "--format", "json"])
        .await
        .ok()
        .json();
    let hb = list["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "hyperbilling-aws")
        .expect("hyperbilling is listed");
    assert_eq!(hb["title"], "Hyperbilling for AWS");
    assert_eq!(hb["enabled"], true);
    let settings: Vec<(String, bool, bool)> = hb["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["required"].as_bool().unwrap(),
                s["secret"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        settings.contains(&("key".into(), true, true)),
        "{settings:?}"
    );
    assert!(
        settings.contains(&("email".into(), true, false)),
        "{settings:?}"
    );
    let show = env
        .run(&["provider", "show", "hyperbilling-aws", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(&show, hb, "show is the listed object");
    let shown = env
        .run(&["provider", "show", "hyperbilling-aws"])
        .await
        .ok()
        .stdout
        .clone();
    assert!(
        shown.starts_with("Hyperbilling for AWS (hyperbilling-aws), enabled")
            && shown.contains("the client secret"),
        "{shown}"
    );
    let table = env.run(&["provider", "list"]).await.ok().stdout.clone();
    assert!(
        table.contains("hyperbilling-aws") && table.contains("file"),
        "{table}"
    );
    env.run(&["provider", "show", "nimbus"])
        .await
        .fails(1, "nimbus");

    // Added with generic settings and the secret on stdin.
    let endpoint = env.sim.endpoint();
    let account_setting = "account=111111111111".to_owned();
    let endpoint_setting = format!("endpoint={endpoint}");
    env.run_with_stdin(
        &[
            "account",
            "add",
            "--name",
            "generic",
            "--project",
            "web",
            "--setting",
            &account_setting,
            "--setting",
            "email=ops@acme.example",
            "--setting",
            &endpoint_setting,
            "--secret-stdin",
        ],
        Some(&format!("{KEY}\n")),
    )
    .await
    .ok();
    // And with Hyperbilling's own spelling (`--cloud-account`, its alias `--account`).
    env.run_with_stdin(
        &[
            "account",
            "add",
            "--name",
            "spelled",
            "--project",
            "web",
            "--cloud-account",
            "333333333333",
            "--email",
            "finops@globex.example",
            "--key-stdin",
        ],
        Some("demo-key-globex\n"),
    )
    .await
    .ok();
    let shown = env
        .run(&["account", "show", "generic", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(shown["settings"]["account"], "111111111111", "{shown}");
    assert_eq!(shown["secrets"], serde_json::json!(["key"]), "{shown}");
    let all = env.run(&["account", "list", "--format", "json"]).await;
    all.ok();
    assert!(!all.stdout.contains(KEY) && !all.stdout.contains("demo-key-globex"));
    let synced = env
        .run(&["sync", "--start", "2025-03-01", "--end", "2025-04-01"])
        .await;
    synced.ok();

    // Bad settings are refused, naming the setting; nothing changes.
    env.run(&[
        "account",
        "add",
        "--name",
        "x",
        "--project",
        "web",
        "--setting",
        "colour=red",
        "--setting",
        "email=a@b.c",
        "--key",
        "k",
    ])
    .await
    .fails(2, "has no such setting");
    env.run(&[
        "account",
        "add",
        "--name",
        "x",
        "--project",
        "web",
        "--setting",
        "key=inline",
        "--setting",
        "email=a@b.c",
    ])
    .await
    .fails(2, "it is a secret");
    env.run(&[
        "account",
        "add",
        "--name",
        "x",
        "--project",
        "web",
        "--setting",
        "noequals",
    ])
    .await
    .fails(2, "KEY=VALUE");

    // Updated: a new e-mail, then a new key from stdin verified against the provider.
    env.run(&[
        "account",
        "update",
        "generic",
        "--setting",
        "email=finance@acme.example",
    ])
    .await
    .ok();
    let shown = env
        .run(&["account", "show", "generic", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        shown["settings"]["email"], "finance@acme.example",
        "{shown}"
    );
    assert_eq!(
        shown["settings"]["account"], "111111111111",
        "kept: {shown}"
    );
    // Back to the client id the provider knows.
    env.run(&[
        "account",
        "update",
        "generic",
        "--setting",
        "email=ops@acme.example",
    ])
    .await
    .ok();
    env.run_with_stdin(
        &["account", "update", "generic", "--secret-stdin", "--verify"],
        Some("wrong-key\n"),
    )
    .await
    .fails(1, "invalid Hyperbilling credentials");
    // The refused key was not kept: the account still syncs with the old one.
    env.run(&[
        "sync",
        "--account",
        "generic",
        "--start",
        "2025-03-01",
        "--end",
        "2025-03-02",
    ])
    .await
    .ok();
    env.run(&["account", "update", "ghost", "--setting", "email=a@b.c"])
        .await
        .fails(1, "ghost");
}
