//! Shared-cost allocation rules.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Debug, Subcommand)]
pub enum AllocationAction {
    /// Create a rule: the cost of the records matching --source is split across --target's
    /// values, every day, exactly (method and rounding: docs/ALLOCATION.md).
    Create(AllocationCreateArgs),
    /// The rules in force, in priority order.
    List,
    /// One rule with every version (who changed what, when, from which day).
    Show {
        /// Rule name or id.
        name: String,
    },
    /// Change a rule from --start on (default: its own start, past any closed month).
    Update(AllocationUpdateArgs),
    /// Delete a rule from --start on (default as update): closed months keep their shares.
    Delete {
        /// Rule name or id.
        name: String,
        /// First day without the rule, YYYY-MM-DD (not in a closed month).
        #[arg(long, value_parser = parse_date)]
        start: Option<NaiveDate>,
    },
}

/// `allocation create` flags.
#[derive(Debug, Args)]
pub struct AllocationCreateArgs {
    /// Unique rule name.
    pub name: String,
    /// The records the rule takes, as a report filter: project=shared, service=AWSSupport,
    /// tag:team=(none); repeat a key for several values, several keys must all match.
    #[arg(long, value_name = "KEY=VALUE", required = true)]
    pub source: Vec<String>,
    /// Who pays: values of one key (project, project_group, service_account or tag:KEY),
    /// comma separated; repeatable.
    #[arg(long, value_name = "KEY=V1,V2,…", required = true)]
    pub target: Vec<String>,
    /// even, proportional (to each target's own cost that day) or fixed (--weight).
    #[arg(long, default_value = "proportional")]
    pub method: String,
    /// A fixed target's percentage (two decimals; all sum to 100): TARGET=PERCENT, repeatable.
    #[arg(long, value_name = "TARGET=PERCENT")]
    pub weight: Vec<String>,
    /// 1 applies first (a record is taken by the first rule whose source it matches).
    #[arg(long, default_value_t = 100)]
    pub priority: u32,
    /// First day the rule applies, YYYY-MM-DD [default: the first of this month, or the first
    /// open day after the closed months].
    #[arg(long, value_parser = parse_date)]
    pub start: Option<NaiveDate>,
}

/// `allocation update` flags: what is given replaces the rule's.
#[derive(Debug, Args)]
pub struct AllocationUpdateArgs {
    /// Rule name or id.
    pub name: String,
    /// A new name.
    #[arg(long = "rename", value_name = "NAME")]
    pub rename: Option<String>,
    /// A new source (replaces the whole source).
    #[arg(long, value_name = "KEY=VALUE")]
    pub source: Vec<String>,
    /// New targets (replace them all).
    #[arg(long, value_name = "KEY=V1,V2,…")]
    pub target: Vec<String>,
    /// A new method.
    #[arg(long)]
    pub method: Option<String>,
    /// New fixed weights (all of them).
    #[arg(long, value_name = "TARGET=PERCENT")]
    pub weight: Vec<String>,
    /// A new priority.
    #[arg(long)]
    pub priority: Option<u32>,
    /// First day of the change, YYYY-MM-DD (not in a closed month).
    #[arg(long, value_parser = parse_date)]
    pub start: Option<NaiveDate>,
}
