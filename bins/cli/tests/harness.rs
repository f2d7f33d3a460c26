//! Runs the binary in a scratch directory with its own database and data directory.

use std::process::Stdio;

use cloudbill_hyperbilling::sim::{SimConfig, Simulator};
use tokio::io::AsyncWriteExt;

pub const KEY: &str = "demo-key-acme";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub sim: Simulator,
    pub db: String,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts a one-line `error:` message containing `needle` and exit status `code`.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "one error line expected, stderr:\n{}",
            self.stderr
        );
        assert!(
            errors[0].contains(needle),
            "{:?} does not contain {needle:?}",
            errors[0]
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

pub fn date(s: &str) -> cloudbill_core::NaiveDate {
    cloudbill_core::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

impl Env {
    pub async fn new() -> Self {
        Self::with_page_size(50).await
    }

    pub async fn with_page_size(page_size: usize) -> Self {
        let mut config = SimConfig::demo(date("2025-06-30"));
        config.page_size = page_size;
        let sim = Simulator::start(config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("billing.db").display());
        Self { dir, sim, db }
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_cloudbill"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("CLOUDBILL_DATABASE_URL", &self.db)
            .env("CLOUDBILL_HYPERBILLING_ENDPOINT", self.sim.endpoint())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env_remove("CLOUDBILL_SECRET_KEY")
            .env_remove("CLOUDBILL_DOMAIN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, None).await
    }

    pub async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        self.run_env(args, stdin, &[]).await
    }

    /// Runs with `stdin` and extra environment variables.
    pub async fn run_env(&self, args: &[&str], stdin: Option<&str>, vars: &[(&str, &str)]) -> Out {
        let mut cmd = self.command(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).await.unwrap();
            drop(pipe);
        }
        let output = child.wait_with_output().await.unwrap();
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// Billing on, project web, and a `file` account `bill` in it (for bill imports).
    pub async fn file_account(&self) {
        self.run(&["billing", "enable"]).await.ok();
        self.run(&["project", "create", "web"]).await.ok();
        self.run(&[
            "account",
            "add",
            "--provider",
            "file",
            "--name",
            "bill",
            "--project",
            "web",
        ])
        .await
        .ok();
    }

    /// Writes `csv` to `bill.csv` in the scratch directory and imports it into the `file`
    /// account `bill` ([`Env::file_account`]).
    pub async fn import_bill(&self, csv: impl AsRef<[u8]>) -> Out {
        let path = self.dir.path().join("bill.csv");
        std::fs::write(&path, csv).unwrap();
        self.run(&[
            "import",
            "focus",
            path.to_str().unwrap(),
            "--account",
            "bill",
        ])
        .await
    }

    /// Billing on, projects web and data, accounts acme-main (web), globex (data) and bad
    /// (data, wrong key).
    pub async fn setup(&self) {
        self.run(&["billing", "enable"]).await.ok();
        self.run(&["project", "create", "web"]).await.ok();
        self.run(&["project", "create", "data"]).await.ok();
        self.run_with_stdin(
            &[
                "account",
                "add",
                "--name",
                "acme-main",
                "--project",
                "web",
                "--account",
                "111111111111",
                "--email",
                "ops@acme.example",
                "--key-stdin",
            ],
            Some("demo-key-acme\n"),
        )
        .await
        .ok();
        self.run(&[
            "account",
            "add",
            "--name",
            "globex",
            "--project",
            "data",
            "--account",
            "333333333333",
            "--email",
            "finops@globex.example",
            "--key",
            "demo-key-globex",
        ])
        .await
        .ok();
        self.run(&[
            "account",
            "add",
            "--name",
            "bad",
            "--project",
            "data",
            "--account",
            "222222222222",
            "--email",
            "ops@acme.example",
            "--key",
            "wrong-key",
        ])
        .await
        .ok();
    }
}
