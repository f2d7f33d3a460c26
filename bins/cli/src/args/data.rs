//! Syncs, jobs, reports, anomalies, forecasts, tags, bill imports and exports.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Account to sync (repeatable); default: every enabled account.
    #[arg(long = "account", value_name = "NAME")]
    pub accounts: Vec<String>,
    /// First day (YYYY-MM-DD); default: from the last successful sync.
    #[arg(long, value_parser = parse_date, value_name = "DATE", requires = "end")]
    pub start: Option<NaiveDate>,
    /// Day after the last (YYYY-MM-DD, exclusive).
    #[arg(long, value_parser = parse_date, value_name = "DATE", requires = "start")]
    pub end: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only this account's jobs.
    #[arg(long)]
    pub account: Option<String>,
    /// At most this many jobs.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub start: NaiveDate,
    /// Day after the last (YYYY-MM-DD, exclusive).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub end: NaiveDate,
    /// daily, monthly or yearly.
    #[arg(long, default_value = "monthly")]
    pub granularity: String,
    /// Keys to group by, comma separated (provider, project, project_group, service_account,
    /// cloud_account, region, service, usage_type, instance_type, currency, charge_category,
    /// tag:KEY for a tag's value).
    #[arg(long, value_delimiter = ',', value_name = "KEY[,KEY…]")]
    pub group_by: Vec<String>,
    /// Only these projects (repeatable).
    #[arg(long)]
    pub project: Vec<String>,
    /// Only projects in these groups, recursively (repeatable).
    #[arg(long)]
    pub project_group: Vec<String>,
    /// Only these billing accounts (repeatable).
    #[arg(long)]
    pub account: Vec<String>,
    /// Only these providers (repeatable).
    #[arg(long)]
    pub provider: Vec<String>,
    /// Only these regions (repeatable).
    #[arg(long)]
    pub region: Vec<String>,
    /// Only these services (repeatable).
    #[arg(long)]
    pub service: Vec<String>,
    /// Only records whose tag KEY has VALUE (repeatable; values of one key OR, different keys
    /// AND; VALUE `(none)` for records without the tag).
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Vec<String>,
    /// Only records whose dimension KEY (any group-by key, tag:KEY too) has VALUE
    /// (repeatable, as --tag).
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// total (largest first) or key.
    #[arg(long, default_value = "total")]
    pub sort: String,
    /// At most this many groups.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Skip this many groups first (after the sort): with --limit, pages through a big answer.
    #[arg(long)]
    pub offset: Option<u32>,
    /// Which cost to sum: billed (FOCUS BilledCost) or effective (EffectiveCost; billed where a
    /// record has none).
    #[arg(long, default_value = "billed", value_name = "METRIC")]
    pub metric: String,
    /// Convert every amount to this currency with the stored rates (`cloudbill fx`); the
    /// rates used are stated. A missing rate is an error naming the currency and the day.
    #[arg(long, value_name = "CODE")]
    pub currency: Option<String>,
    /// Which rate converts a cell: daily (its day's, or the latest of the 7 days before),
    /// period-end (the rate of its bucket's last day) or fixed:NAME (a named rate set).
    #[arg(long, value_name = "POLICY", requires = "currency")]
    pub fx_policy: Option<String>,
    /// Show every digit in the table (by default amounts are rounded to the currency's minor
    /// unit, with thousands separators; JSON and CSV are always exact).
    #[arg(long)]
    pub exact: bool,
    /// Move shared costs to their targets by the allocation rules (`cloudbill allocation`);
    /// totals over all groups are unchanged.
    #[arg(long)]
    pub allocated: bool,
}

/// `cloudbill anomalies` flags.
#[derive(Debug, Args)]
pub struct AnomaliesArgs {
    /// First day judged (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub start: NaiveDate,
    /// Day after the last judged (YYYY-MM-DD, exclusive).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub end: NaiveDate,
    /// The dimension to split by (any report key, tag:KEY too).
    #[arg(long, default_value = "service", value_name = "KEY")]
    pub group_by: String,
    /// Only this project (repeatable).
    #[arg(long)]
    pub project: Vec<String>,
    /// Only this billing account (repeatable).
    #[arg(long)]
    pub account: Vec<String>,
    /// Only records whose dimension KEY has VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// spikes (default) or both (drops too).
    #[arg(long, default_value = "spikes")]
    pub direction: String,
    /// The least excess over expected, in the currency [default: 10].
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub min_amount: Option<String>,
    /// The least excess over expected, in percent [default: 20].
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub min_percent: Option<String>,
    /// open (default) or all: with all, also the anomalies a monitor of the same split and
    /// scope keeps acknowledged, ignored or closed.
    #[arg(long, default_value = "open")]
    pub state: String,
}

/// `cloudbill forecast` flags.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// Only this project (repeatable).
    #[arg(long)]
    pub project: Vec<String>,
    /// Only projects in this group, recursively (repeatable).
    #[arg(long, alias = "group")]
    pub project_group: Vec<String>,
    /// Only this billing account (repeatable).
    #[arg(long)]
    pub account: Vec<String>,
    /// Only records whose dimension KEY (any report key, tag:KEY too) has VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// monthly, quarterly or yearly: the period holding --as-of.
    #[arg(long, default_value = "monthly")]
    pub period: String,
    /// Today (YYYY-MM-DD) [default: today, UTC].
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub as_of: Option<NaiveDate>,
    /// Days before today the provider may still restate, left out of the history (0–31).
    #[arg(long, default_value_t = 2)]
    pub restate_days: i64,
    /// With the shares the allocation rules move (`cloudbill allocation`).
    #[arg(long)]
    pub allocated: bool,
}

/// `cloudbill tags` flags.
#[derive(Debug, Args)]
pub struct TagsArgs {
    /// First day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub start: NaiveDate,
    /// Day after the last (YYYY-MM-DD, exclusive).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub end: NaiveDate,
    /// Only this project's costs.
    #[arg(long)]
    pub project: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImportFormat {
    /// A FinOps FOCUS 1.0–1.2 CSV file.
    Focus(ImportArgs),
    /// An AWS Cost and Usage Report CSV file (`lineItem/…` columns).
    Cur(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file (`.csv` or `.csv.gz`).
    pub file: PathBuf,
    /// The `file` account to import into (replaces its records for the days the file covers).
    #[arg(long)]
    pub account: String,
    /// Skip rows that cannot be read (count them, report the first 20) instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Replace this whole range (START..END, end exclusive): days in it without rows become
    /// empty, every row must lie in it. Without it, exactly the days the file holds rows for
    /// are replaced.
    #[arg(long, value_parser = parse_window, value_name = "START..END")]
    pub window: Option<DateRange>,
}

/// `START..END` (YYYY-MM-DD, end exclusive).
pub(super) fn parse_window(raw: &str) -> Result<DateRange, String> {
    let (start, end) = raw
        .split_once("..")
        .ok_or_else(|| format!("{raw:?} is not START..END (e.g. 2025-01-01..2025-02-01)"))?;
    let range = DateRange::parse(start.trim(), end.trim()).map_err(|e| e.to_string())?;
    if range.days() > MAX_RANGE_DAYS {
        return Err(format!(
            "the window has {} days; at most {MAX_RANGE_DAYS}",
            range.days()
        ));
    }
    Ok(range)
}

#[derive(Debug, Subcommand)]
pub enum ExportFormat {
    /// FOCUS 1.2 CSV.
    Focus(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// First day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub start: NaiveDate,
    /// Day after the last (YYYY-MM-DD, exclusive).
    #[arg(long, value_parser = parse_date, value_name = "DATE")]
    pub end: NaiveDate,
    /// Only these projects (repeatable).
    #[arg(long)]
    pub project: Vec<String>,
    /// Where to write: a `.parquet` file gets Parquet (typed columns), any other name CSV;
    /// `-` writes CSV to stdout.
    pub file: PathBuf,
}
