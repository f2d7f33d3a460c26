//! Progress bars for long work, drawn on stderr only when it is a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use cloudbill_service::{AccountOutcome, SyncObserver};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One bar per account, on a TTY.
pub(crate) struct Bars {
    multi: MultiProgress,
    by_account: Mutex<HashMap<String, ProgressBar>>,
    enabled: bool,
}

impl Bars {
    /// Bars on stderr if it is a terminal, nothing otherwise.
    pub(crate) fn new() -> Self {
        let enabled = std::io::stderr().is_terminal();
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
            by_account: Mutex::default(),
            enabled,
        }
    }

    fn bar(&self, account: &str) -> Option<ProgressBar> {
        if !self.enabled {
            return None;
        }
        self.by_account.lock().ok()?.get(account).cloned()
    }
}

impl SyncObserver for Bars {
    fn started(&self, account: &str, windows: usize) {
        if !self.enabled {
            return;
        }
        let bar = self.multi.add(ProgressBar::new(windows as u64));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>20} [{bar:30}] {pos}/{len} windows {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(account.to_owned());
        if let Ok(mut bars) = self.by_account.lock() {
            bars.insert(account.to_owned(), bar);
        }
    }

    fn window_done(&self, account: &str, rows: u64) {
        if let Some(bar) = self.bar(account) {
            bar.inc(1);
            bar.set_message(format!("+{rows} rows"));
        }
    }

    fn finished(&self, outcome: &AccountOutcome) {
        if let Some(bar) = self.bar(&outcome.account) {
            bar.finish_with_message(outcome.state.as_str().to_owned());
        }
    }
}
