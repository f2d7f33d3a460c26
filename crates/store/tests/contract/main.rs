//! The store contract: one suite of cases, run against every adapter.
//!
//! PostgreSQL cases need `CLOUDBILL_TEST_DATABASE_URL`; without it they print a SKIPPED line and
//! pass, unless `CLOUDBILL_REQUIRE_POSTGRES=1` (set by CI) turns the skip into a failure.
//! Each PostgreSQL case runs in a schema of its own, so cases run in parallel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]
// Test code favours short names and local helper items next to their use.
#![allow(
    clippy::many_single_char_names,
    clippy::similar_names,
    clippy::items_after_statements
)]

mod cases;
mod raw;
mod support;

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $case() {
                let h = crate::support::memory();
                crate::cases::$case(&h).await;
            })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $case() {
                let h = crate::support::sqlite().await;
                crate::cases::$case(&h).await;
            })*
        }
        mod postgres {
            $(#[tokio::test] async fn $case() {
                let Some(h) = crate::support::postgres(stringify!($case)).await else { return };
                crate::cases::$case(&h).await;
                h.cleanup().await;
            })*
        }
    };
}

contract!(
    new_domain_has_billing_off_and_default_providers,
    providers_can_be_disabled_and_enabled,
    domains_are_listed_and_disabled_one_at_a_time,
    the_change_feed_announces_every_committed_version,
    the_change_log_names_what_each_version_changed,
    the_change_log_keeps_the_last_versions_only,
    projects_and_groups_enforce_unique_names_and_references,
    accounts_round_trip_with_credentials_and_enforce_names,
    deleting_an_account_removes_its_data,
    assignment_history_moves_with_and_without_a_date,
    replace_window_replaces_and_audits_restatements,
    identical_replace_is_a_no_op,
    failed_replace_mid_write_keeps_the_old_rows,
    exact_decimals_round_trip,
    jobs_are_listed_newest_first_and_updated,
    domains_are_isolated,
    leases_exclude_other_holders_until_they_expire,
    tokens_are_found_by_hash_listed_and_revoked,
    partitions_mirror_the_rows_and_versions_move,
    streamed_replace_writes_chunks_in_one_transaction,
    streamed_replace_learns_its_window,
    streamed_replace_takes_ready_encoded_partitions,
    concurrent_replaces_of_one_account_run_one_after_the_other,
    budgets_channels_and_the_outbox,
    monitors_keep_anomalies_with_compare_and_set,
    rates_are_kept_once_and_conflicts_write_nothing,
    invoices_and_closed_periods_are_kept_exactly,
    accounts_read_while_removed_are_whole_or_absent,
    source_revisions_are_kept_per_account_window,
    allocation_rules_are_kept_as_versions,
);
