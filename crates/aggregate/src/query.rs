//! The report query and its answer, in the shape of DESIGN.md.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use cloudbill_core::CostMetric;
use cloudbill_core::{Currency, DateRange, Decimal, Granularity};
use serde::{Deserialize, Serialize};

use cloudbill_core::Attribute;

use crate::QueryError;

/// A dimension to group or filter by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum GroupKey {
    /// `hyperbilling-aws`, `file`.
    Provider,
    /// The project the account was assigned to on the record's day.
    Project,
    /// The project's group (filters include sub-groups).
    ProjectGroup,
    /// The billing service account.
    ServiceAccount,
    /// The cloud's own account id.
    CloudAccount,
    /// Region.
    Region,
    /// Service.
    Service,
    /// Usage type.
    UsageType,
    /// Instance type.
    InstanceType,
    /// Currency.
    Currency,
    /// FOCUS charge category.
    ChargeCategory,
    /// A FOCUS attribute the source sent (`service_category`, `availability_zone`, `sku`,
    /// `resource`, `resource_type`, `charge_class`, `pricing_category`,
    /// `commitment_discount`, `service_subcategory`, `billing_account`); records without it
    /// group under `(none)`.
    Attribute(Attribute),
    /// The value of one tag (`tag:KEY`); records without the tag group under `(none)`.
    Tag(TagKey),
}

/// The FOCUS attributes that are dimensions, by their key.
const ATTRIBUTE_KEYS: [(&str, Attribute); 10] = [
    ("billing_account", Attribute::BillingAccountId),
    ("service_category", Attribute::ServiceCategory),
    ("service_subcategory", Attribute::ServiceSubcategory),
    ("availability_zone", Attribute::AvailabilityZone),
    ("sku", Attribute::SkuId),
    ("resource", Attribute::ResourceId),
    ("resource_type", Attribute::ResourceType),
    ("charge_class", Attribute::ChargeClass),
    ("pricing_category", Attribute::PricingCategory),
    ("commitment_discount", Attribute::CommitmentDiscountId),
];

const KEYS: &str = "provider, project, project_group, service_account, cloud_account (or sub_account), billing_account, region, service, usage_type, instance_type, currency, charge_category, service_category, service_subcategory, availability_zone, sku, resource, resource_type, charge_class, pricing_category, commitment_discount, tag:KEY";

/// The longest tag key a query may name, in characters (AWS allows 128).
pub const MAX_TAG_KEY_LEN: usize = 256;

/// A tag key as a dimension: `tag:KEY`. Keys are case-sensitive, as the clouds keep them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagKey {
    /// `tag:KEY`.
    label: String,
}

impl TagKey {
    /// The tag key `key` (not empty, at most [`MAX_TAG_KEY_LEN`] characters, no control
    /// characters).
    pub fn new(key: &str) -> Result<Self, QueryError> {
        if key.is_empty()
            || key.chars().count() > MAX_TAG_KEY_LEN
            || key.chars().any(char::is_control)
        {
            return Err(QueryError::UnknownKey {
                key: format!("tag:{}", cloudbill_core::cut(key, 40)),
                expected: "tag:KEY with a non-empty KEY of at most 256 characters and no control characters",
            });
        }
        Ok(Self {
            label: format!("tag:{key}"),
        })
    }

    /// The key itself (`team` of `tag:team`).
    pub fn key(&self) -> &str {
        &self.label[4..]
    }
}

impl GroupKey {
    /// Every key, in a stable order.
    pub const ALL: [GroupKey; 21] = [
        GroupKey::Provider,
        GroupKey::Project,
        GroupKey::ProjectGroup,
        GroupKey::ServiceAccount,
        GroupKey::CloudAccount,
        GroupKey::Region,
        GroupKey::Service,
        GroupKey::UsageType,
        GroupKey::InstanceType,
        GroupKey::Currency,
        GroupKey::ChargeCategory,
        GroupKey::Attribute(Attribute::ServiceCategory),
        GroupKey::Attribute(Attribute::ServiceSubcategory),
        GroupKey::Attribute(Attribute::AvailabilityZone),
        GroupKey::Attribute(Attribute::SkuId),
        GroupKey::Attribute(Attribute::ResourceId),
        GroupKey::Attribute(Attribute::ResourceType),
        GroupKey::Attribute(Attribute::ChargeClass),
        GroupKey::Attribute(Attribute::PricingCategory),
        GroupKey::Attribute(Attribute::CommitmentDiscountId),
        GroupKey::Attribute(Attribute::BillingAccountId),
    ];

    /// The tag key `key` as a dimension (see [`TagKey::new`]).
    pub fn tag(key: &str) -> Result<Self, QueryError> {
        TagKey::new(key).map(GroupKey::Tag)
    }

    /// The snake_case name used in queries and results (`tag:KEY` for a tag).
    pub fn as_str(&self) -> &str {
        match self {
            GroupKey::Tag(tag) => &tag.label,
            GroupKey::Attribute(a) => ATTRIBUTE_KEYS
                .iter()
                .find(|(_, x)| x == a)
                .map_or(a.snake_name(), |(key, _)| key),
            GroupKey::Provider => "provider",
            GroupKey::Project => "project",
            GroupKey::ProjectGroup => "project_group",
            GroupKey::ServiceAccount => "service_account",
            GroupKey::CloudAccount => "cloud_account",
            GroupKey::Region => "region",
            GroupKey::Service => "service",
            GroupKey::UsageType => "usage_type",
            GroupKey::InstanceType => "instance_type",
            GroupKey::Currency => "currency",
            GroupKey::ChargeCategory => "charge_category",
        }
    }
}

impl FromStr for GroupKey {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(key) = s.trim_start().strip_prefix("tag:") {
            return GroupKey::tag(key);
        }
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        // FOCUS calls the cloud's account the sub-account.
        if norm == "sub_account" {
            return Ok(GroupKey::CloudAccount);
        }
        GroupKey::ALL
            .into_iter()
            .find(|k| k.as_str() == norm)
            .ok_or_else(|| QueryError::UnknownKey {
                key: s.to_owned(),
                expected: KEYS,
            })
    }
}

impl TryFrom<String> for GroupKey {
    type Error = QueryError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<GroupKey> for String {
    fn from(value: GroupKey) -> Self {
        match value {
            GroupKey::Tag(tag) => tag.label,
            other => other.as_str().to_owned(),
        }
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    /// Largest total first (the default).
    #[default]
    Total,
    /// By group values, ascending.
    Key,
}

impl FromStr for Sort {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "total" => Ok(Sort::Total),
            "key" => Ok(Sort::Key),
            _ => Err(QueryError::UnknownKey {
                key: s.to_owned(),
                expected: "total, key",
            }),
        }
    }
}

/// A report query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    /// Days covered, end exclusive.
    pub range: DateRange,
    /// Time bucket.
    pub granularity: Granularity,
    /// Dimensions to group by (none: one consolidated row).
    pub group_by: Vec<GroupKey>,
    /// Allowed values per dimension; projects, groups and accounts by name or id.
    pub filters: BTreeMap<GroupKey, Vec<String>>,
    /// Order of results.
    pub sort: Sort,
    /// At most this many results.
    pub limit: Option<u32>,
    /// Results skipped first (after the sort): with `limit`, pages through a big answer;
    /// `total_count` tells how many there are.
    pub offset: u32,
    /// Which cost is summed: billed (the default) or effective.
    pub metric: CostMetric,
    /// The most amounts (each period's and each total of the rows answered, after `offset`
    /// and `limit`) an answer may hold; a bigger one is refused with [`QueryError::AnswerTooLarge`] before
    /// it is built. `None`: no bound (the CLI); the server sets one.
    pub max_cells: Option<u64>,
    /// Shared costs moved to their targets by these rules (see [`crate::allocation`]);
    /// `None`: every cost where it was recorded.
    pub allocation: Option<std::sync::Arc<crate::Allocation>>,
    /// Asks the caller's service to fill `allocation` with the domain's rules (the engine
    /// reads `allocation` only).
    pub allocated: bool,
}

impl Query {
    /// A consolidated query over `range` at `granularity`.
    pub fn new(range: DateRange, granularity: Granularity) -> Self {
        Self {
            range,
            granularity,
            group_by: vec![],
            filters: BTreeMap::new(),
            sort: Sort::Total,
            limit: None,
            offset: 0,
            metric: CostMetric::Billed,
            max_cells: None,
            allocation: None,
            allocated: false,
        }
    }
}

/// An exact amount in one currency (JSON: `{"cost": "1.23", "currency": "USD"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    /// The exact sum, as a decimal string in JSON.
    pub cost: Decimal,
    /// Its currency.
    pub currency: Currency,
}

/// One time bucket of one group in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// `YYYY-MM-DD`, `YYYY-MM` or `YYYY`.
    pub date: String,
    /// The exact sum.
    pub cost: Decimal,
    /// Its currency.
    pub currency: Currency,
}

/// The group value of records without a value of the key (no such tag, no instance type,
/// no project group): `(none)` in tables, `null` in JSON.
pub const NO_VALUE: &str = "(none)";

fn group_json<S: serde::Serializer>(
    group: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(group.len()))?;
    for (k, v) in group {
        map.serialize_entry(k, &(v != NO_VALUE).then_some(v))?;
    }
    map.end()
}

fn group_from_json<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, Option<String>>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_else(|| NO_VALUE.to_owned())))
        .collect())
}

/// One group of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRow {
    /// Group values by key (names for projects, groups and accounts); [`NO_VALUE`] for
    /// records without a value of the key, which JSON writes as `null`.
    #[serde(serialize_with = "group_json", deserialize_with = "group_from_json")]
    pub group: BTreeMap<String, String>,
    /// Per bucket and currency, in date order.
    pub billing_data: Vec<Bucket>,
    /// Per currency over the whole range.
    pub total: Vec<Amount>,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// First day.
    pub start: String,
    /// Day after the last.
    pub end: String,
    /// Bucket size.
    pub granularity: Granularity,
    /// The group-by keys, in query order.
    pub group_by: Vec<GroupKey>,
    /// The groups (after sort and limit).
    pub results: Vec<ReportRow>,
    /// Number of groups before the limit.
    pub total_count: usize,
    /// How amounts were converted to one currency, when they were (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<Conversion>,
}

/// The conversion of a report to one currency: the target, the policy, and the rates used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// Every amount is in this currency.
    pub currency: Currency,
    /// `daily` (the rate of each cell's day, or the latest within 7 days before it),
    /// `period-end` (the rate of each bucket's last day) or `fixed:NAME`.
    pub policy: String,
    /// Per source currency converted: the rates used.
    pub rates: Vec<RatesUsed>,
}

/// The rates one source currency was converted with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatesUsed {
    /// The source currency.
    pub from: Currency,
    /// The earliest rate date used.
    pub first_rate_date: chrono::NaiveDate,
    /// The latest rate date used.
    pub last_rate_date: chrono::NaiveDate,
    /// Where the rates come from.
    pub sources: Vec<String>,
}

impl Report {
    /// The grand total per currency over every result row shown.
    pub fn totals(&self) -> Vec<Amount> {
        let mut by: BTreeMap<Currency, Decimal> = BTreeMap::new();
        for row in &self.results {
            for a in &row.total {
                *by.entry(a.currency).or_default() += a.cost;
            }
        }
        by.into_iter()
            .map(|(currency, cost)| Amount { cost, currency })
            .collect()
    }
}

/// At most this many values are listed per tag key by [`crate::Engine::tag_summary`].
pub const MAX_TAG_VALUES_LISTED: usize = 100;

/// One tag key of the records a query selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagSummary {
    /// The key (group by it as `tag:KEY`).
    pub key: String,
    /// How many distinct values it has.
    pub value_count: usize,
    /// How many records carry it.
    pub records: u64,
    /// Its values, the most used first (at most [`MAX_TAG_VALUES_LISTED`]).
    pub values: Vec<TagValue>,
}

/// One value of a tag key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagValue {
    /// The value.
    pub value: String,
    /// How many records carry it.
    pub records: u64,
}
