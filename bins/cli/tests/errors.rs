//! Every user error: one `error:` line, the right exit status, nothing written.

use crate::harness::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_specifically() {
    let env = Env::new().await;

    // Billing disabled.
    env.run(&["project", "create", "web"]).await.ok();
    env.run(&[
        "account",
        "add",
        "--name",
        "a",
        "--project",
        "web",
        "--account",
        "111111111111",
        "--email",
        "ops@acme.example",
        "--key",
        "demo-key-acme",
    ])
    .await
    .ok();
    env.run(&["sync"]).await.fails(1, "billing is not enabled for domain \"default\"; an admin can turn it on with `cloudbill billing enable`");
    env.run(&["report", "--start", "2025-01-01", "--end", "2025-02-01"])
        .await
        .fails(1, "cloudbill billing enable");
    env.run(&["billing", "enable"]).await.ok();

    // Malformed dates, end <= start, unknown keys.
    env.run(&["report", "--start", "2025-13-01", "--end", "2025-02-01"])
        .await
        .fails(2, "\"2025-13-01\" is not a date (expected YYYY-MM-DD)");
    env.run(&["report", "--start", "2025/01/01", "--end", "2025-02-01"])
        .await
        .fails(2, "is not a date");
    env.run(&["report", "--start", "2025-02-01", "--end", "2025-02-01"])
        .await
        .fails(2, "end 2025-02-01 must be after start 2025-02-01");
    env.run(&["sync", "--start", "2025-02-01", "--end", "2025-01-01"])
        .await
        .fails(2, "must be after start");
    env.run(&[
        "report",
        "--start",
        "2025-01-01",
        "--end",
        "2025-02-01",
        "--group-by",
        "colour",
    ])
    .await
    .fails(2, "unknown key \"colour\"");
    env.run(&[
        "report",
        "--start",
        "2025-01-01",
        "--end",
        "2025-02-01",
        "--granularity",
        "weekly",
    ])
    .await
    .fails(2, "\"weekly\" is not a granularity");
    env.run(&[
        "report",
        "--start",
        "2025-01-01",
        "--end",
        "2025-02-01",
        "--limit",
        "0",
    ])
    .await
    .fails(2, "--limit must be at least 1");
    env.run(&[
        "report",
        "--start",
        "2025-01-01",
        "--end",
        "2025-02-01",
        "--project",
        "nope",
    ])
    .await
    .fails(2, "unknown project \"nope\"");
    env.run(&["report", "--start", "2025-01-01"])
        .await
        .fails(2, "--end");

    // Unknown project / account, duplicate names, missing project: nothing written.
    let before = env
        .run(&["account", "list", "--format", "json"])
        .await
        .ok()
        .json();
    env.run(&[
        "account",
        "add",
        "--name",
        "b",
        "--project",
        "nope",
        "--account",
        "1",
        "--email",
        "a@b.c",
        "--key",
        "k",
    ])
    .await
    .fails(1, "project \"nope\" not found");
    env.run(&[
        "account",
        "add",
        "--name",
        "a",
        "--project",
        "web",
        "--account",
        "1",
        "--email",
        "a@b.c",
        "--key",
        "k",
    ])
    .await
    .fails(1, "service account \"a\" already exists");
    env.run(&[
        "account",
        "add",
        "--name",
        "c",
        "--account",
        "1",
        "--email",
        "a@b.c",
        "--key",
        "k",
    ])
    .await
    .fails(2, "a project is required");
    env.run(&[
        "account",
        "add",
        "--name",
        "d",
        "--project",
        "web",
        "--account",
        "1",
        "--email",
        "a@b.c",
        "--key",
        "k",
        "--endpoint",
        "ftp://x",
    ])
    .await
    .fails(
        2,
        "setting \"endpoint\" is not valid: \"ftp://x\" is not an http(s) URL",
    );
    env.run(&["project", "create", "web"])
        .await
        .fails(1, "project \"web\" already exists");
    env.run(&["account", "show", "ghost"])
        .await
        .fails(1, "service account \"ghost\" not found");
    env.run(&["sync", "--account", "ghost"])
        .await
        .fails(1, "service account \"ghost\" not found");
    // An unknown provider is not found, like an unknown account (#30: the API's 404).
    env.run(&["provider", "disable", "azure"])
        .await
        .fails(1, "provider \"azure\" not found");
    let after = env
        .run(&["account", "list", "--format", "json"])
        .await
        .ok()
        .json();
    assert_eq!(before, after, "failed commands wrote nothing");

    // Bad credentials and an unreachable endpoint, with --verify: refused, not stored.
    env.run(&[
        "account",
        "add",
        "--name",
        "v",
        "--project",
        "web",
        "--account",
        "111111111111",
        "--email",
        "ops@acme.example",
        "--key",
        "nope",
        "--verify",
    ])
    .await
    .fails(
        1,
        "invalid Hyperbilling credentials for account 111111111111",
    );
    env.run(&[
        "account",
        "add",
        "--name",
        "u",
        "--project",
        "web",
        "--account",
        "1",
        "--email",
        "a@b.c",
        "--key",
        "k",
        "--endpoint",
        "http://127.0.0.1:9",
        "--verify",
    ])
    .await
    .fails(1, "Hyperbilling unavailable after");
    assert_eq!(
        env.run(&["account", "list", "--format", "json"])
            .await
            .ok()
            .json(),
        before
    );
    // Without --verify an unreachable endpoint is stored (it may be down right now)…
    env.run(&[
        "account",
        "add",
        "--name",
        "u",
        "--project",
        "web",
        "--account",
        "1",
        "--email",
        "a@b.c",
        "--key",
        "k",
        "--endpoint",
        "http://127.0.0.1:9",
    ])
    .await
    .ok();
    // …and `account verify` says why it cannot be reached.
    env.run(&["account", "verify", "u"])
        .await
        .fails(1, "connection failed");
    env.run(&["account", "verify", "a"]).await.ok();
}
