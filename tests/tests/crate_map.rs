//! The dependency rules of docs/ARCHITECTURE.md, checked with `cargo tree` (per package, as a
//! build of that package alone would resolve it).

use std::collections::BTreeSet;

/// The packages `package` depends on (normal edges, transitively), by name.
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    dependencies_with(package, &[])
}

/// [`normal_dependencies`] with extra `cargo tree` arguments (features).
fn dependencies_with(package: &str, extra: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(extra)
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != package)
        .map(str::to_owned)
        .collect()
}

fn internal(deps: &BTreeSet<String>) -> BTreeSet<&str> {
    deps.iter()
        .map(String::as_str)
        .filter(|d| d.starts_with("cloudbill"))
        .collect()
}

#[test]
fn core_depends_on_no_workspace_crate() {
    let deps = normal_dependencies("cloudbill-core");
    assert!(internal(&deps).is_empty(), "{deps:?}");
}

/// What each crate may depend on (ARCHITECTURE.md draws it).
const ARROWS: &[(&str, &[&str])] = &[
    (
        "cloudbill",
        &[
            "cloudbill-core",
            "cloudbill-columnar",
            "cloudbill-provider",
            "cloudbill-hyperbilling",
            "cloudbill-outbound",
            "cloudbill-store",
            "cloudbill-aggregate",
            "cloudbill-focus",
            "cloudbill-service",
            "cloudbill-compose",
            "cloudbill-notify",
            "cloudbill-aws",
            "cloudbill-azure",
            "cloudbill-gcp",
            "cloudbill-exports",
        ],
    ),
    (
        "cloudbill-web",
        &[
            "cloudbill-core",
            "cloudbill-columnar",
            "cloudbill-provider",
            "cloudbill-store",
            "cloudbill-aggregate",
            "cloudbill-focus",
            "cloudbill-service",
        ],
    ),
    ("cloudbill-columnar", &["cloudbill-core"]),
    ("cloudbill-outbound", &["cloudbill-core"]),
    ("cloudbill-provider", &["cloudbill-core"]),
    (
        "cloudbill-hyperbilling",
        &["cloudbill-core", "cloudbill-provider", "cloudbill-outbound"],
    ),
    (
        "cloudbill-aggregate",
        &["cloudbill-core", "cloudbill-columnar"],
    ),
    ("cloudbill-focus", &["cloudbill-core", "cloudbill-columnar"]),
    // The cloud connectors: object stores and bill files, never the service or a store.
    (
        "cloudbill-exports",
        &[
            "cloudbill-core",
            "cloudbill-columnar",
            "cloudbill-provider",
            "cloudbill-focus",
            "cloudbill-outbound",
        ],
    ),
    (
        "cloudbill-gcp",
        &[
            "cloudbill-core",
            "cloudbill-columnar",
            "cloudbill-provider",
            "cloudbill-focus",
            "cloudbill-outbound",
        ],
    ),
    (
        "cloudbill-azure",
        &[
            "cloudbill-core",
            "cloudbill-columnar",
            "cloudbill-provider",
            "cloudbill-focus",
            "cloudbill-outbound",
            "cloudbill-exports",
        ],
    ),
    (
        "cloudbill-aws",
        &[
            "cloudbill-core",
            "cloudbill-columnar",
            "cloudbill-provider",
            "cloudbill-focus",
            "cloudbill-outbound",
            "cloudbill-exports",
        ],
    ),
    ("cloudbill-store", &["cloudbill-core", "cloudbill-columnar"]),
    (
        "cloudbill-compose",
        &[
            "cloudbill-core",
            "cloudbill-columnar",
            "cloudbill-provider",
            "cloudbill-hyperbilling",
            "cloudbill-store",
            "cloudbill-aggregate",
            "cloudbill-focus",
            "cloudbill-service",
            "cloudbill-notify",
            "cloudbill-outbound",
            "cloudbill-aws",
            "cloudbill-azure",
            "cloudbill-gcp",
            "cloudbill-exports",
        ],
    ),
    (
        "cloudbill-notify",
        &[
            "cloudbill-core",
            "cloudbill-outbound",
            "cloudbill-columnar",
            "cloudbill-provider",
            "cloudbill-store",
            "cloudbill-aggregate",
            "cloudbill-focus",
            "cloudbill-service",
        ],
    ),
    (
        "cloudbill-service",
        &[
            "cloudbill-core",
            "cloudbill-columnar",
            "cloudbill-provider",
            "cloudbill-store",
            "cloudbill-aggregate",
            "cloudbill-focus",
        ],
    ),
];

#[test]
fn the_arrows_point_down() {
    for &(package, may) in ARROWS {
        let deps = normal_dependencies(package);
        let found = internal(&deps);
        let extra: Vec<&&str> = found.iter().filter(|d| !may.contains(d)).collect();
        assert!(
            extra.is_empty(),
            "{package} depends on {extra:?}, which ARCHITECTURE.md forbids"
        );
    }
}

/// The facade is a library of libraries: with every feature on, no binary's package is in
/// its tree (the server's HTTP surface is the `cloudbill-web` library).
#[test]
fn the_facade_depends_on_no_binary_package() {
    let deps = dependencies_with("cloudbill", &[]);
    let all = {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = std::process::Command::new(cargo)
            .args([
                "tree",
                "--offline",
                "-p",
                "cloudbill",
                "--all-features",
                "-e",
                "normal",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(
        all.contains("cloudbill-web"),
        "the server feature brings the web crate: {all}"
    );
    for binary in ["cloudbill-cli", "cloudbill-server", "cloudbill-demo"] {
        assert!(
            !deps.contains(binary)
                && !all
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(binary)),
            "the facade depends on {binary}"
        );
    }
}

/// Lines of the `.rs` files under `dir`, each file with its count.
fn rust_lines(dir: &std::path::Path) -> Vec<(std::path::PathBuf, usize)> {
    let mut out = Vec::new();
    visit(dir, &mut |path, text| {
        out.push((path.to_owned(), text.lines().count()));
    });
    out
}

/// `bins/server` keeps flags, composition and serving; the product is in libraries.
#[test]
fn the_server_binary_stays_thin() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = rust_lines(&root.join("bins/server/src"));
    assert!(!files.is_empty());
    let total: usize = files.iter().map(|(_, n)| n).sum();
    assert!(total < 1000, "bins/server/src has {total} lines: {files:?}");
}

/// No library source file over 800 lines (nor the CLI's): a file that grows past it splits
/// by concern.
#[test]
fn no_source_file_is_over_800_lines() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut long = Vec::new();
    for dir in ["crates", "bins"] {
        for (path, lines) in rust_lines(&root.join(dir)) {
            let in_src = path.components().any(|c| c.as_os_str() == "src");
            if in_src && lines > 800 {
                long.push(format!("{}: {lines}", path.display()));
            }
        }
    }
    assert!(long.is_empty(), "{long:#?}");
}

#[test]
fn the_service_knows_no_database_driver_http_client_web_framework_or_cli_parser() {
    let deps = normal_dependencies("cloudbill-service");
    for forbidden in ["sqlx", "sqlx-core", "reqwest", "axum", "clap", "hyper"] {
        assert!(
            !deps.contains(forbidden),
            "cloudbill-service depends on {forbidden}"
        );
    }
}

#[test]
fn only_notify_sends_notifications() {
    // The service decides what to send and when; only cloudbill-notify (and what composes
    // it) carries an SMTP client.
    for package in [
        "cloudbill-service",
        "cloudbill-store",
        "cloudbill-aggregate",
        "cloudbill-core",
    ] {
        assert!(
            !normal_dependencies(package).contains("lettre"),
            "{package} depends on lettre"
        );
    }
}

#[test]
fn only_hyperbilling_knows_the_hyperbilling_wire_format() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let markers = [
        "USAGE_COST",
        "NextDataToken",
        "X-Client-Secret",
        "linkedaccount",
    ];
    let mut offenders = Vec::new();
    for dir in ["crates", "bins", "bench", "tests"] {
        visit(&root.join(dir), &mut |path, text| {
            let in_hyperbilling = path.components().any(|c| c.as_os_str() == "hyperbilling");
            if !in_hyperbilling && path.file_name().is_some_and(|n| n != "crate_map.rs") {
                for m in markers {
                    if text.contains(m) {
                        offenders.push(format!("{} names {m}", path.display()));
                    }
                }
            }
        });
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

fn visit(dir: &std::path::Path, f: &mut dyn FnMut(&std::path::Path, &str)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                visit(&path, f);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            if let Ok(text) = std::fs::read_to_string(&path) {
                f(&path, &text);
            }
        }
    }
}
