//! Shared-cost allocation rules: who pays for what nobody owns alone.
//!
//! A rule is kept as its versions: each change (create, update, delete) adds one, with who
//! made it, when, and the day it applies from. docs/ALLOCATION.md is the user's account.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{AllocationId, DomainId, Name, ValidationError};

/// The most targets one rule may name.
pub const MAX_ALLOCATION_TARGETS: usize = 100;
/// The most keys a rule's source may filter on, and values per key.
pub const MAX_SOURCE_KEYS: usize = 20;
/// The most values one source key may list.
pub const MAX_SOURCE_VALUES: usize = 100;
/// The highest priority number (1 is applied first).
pub const MAX_PRIORITY: u32 = 1_000_000;
/// The longest target or source value, in characters.
pub const MAX_ALLOCATION_VALUE_LEN: usize = 256;

/// How a rule divides its source's cost among the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllocationMethod {
    /// Equal parts.
    Even,
    /// In proportion to each target's own cost, that day, in that currency.
    Proportional,
    /// Fixed percentages (`weights`).
    Fixed,
}

impl AllocationMethod {
    /// `even`, `proportional`, `fixed`.
    pub fn as_str(self) -> &'static str {
        match self {
            AllocationMethod::Even => "even",
            AllocationMethod::Proportional => "proportional",
            AllocationMethod::Fixed => "fixed",
        }
    }
}

impl std::str::FromStr for AllocationMethod {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "even" => Ok(AllocationMethod::Even),
            "proportional" => Ok(AllocationMethod::Proportional),
            "fixed" => Ok(AllocationMethod::Fixed),
            _ => Err(ValidationError::Unknown {
                what: "allocation method",
                value: s.to_owned(),
                expected: "even, proportional, fixed",
            }),
        }
    }
}

/// What a rule does: its source, targets and method (the part of a version a user writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationSpec {
    /// The records the rule takes: report filter key → allowed values; every key must match.
    pub source: BTreeMap<String, Vec<String>>,
    /// The report key the targets are values of (`project`, `project_group`,
    /// `service_account`, `tag:KEY`).
    pub target: String,
    /// The targets, by name (or id), in order: the order breaks remainder ties.
    pub targets: Vec<String>,
    /// How the source is divided.
    pub method: AllocationMethod,
    /// For `fixed`: one percentage per target, at most two decimals, summing to exactly 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<Decimal>,
    /// 1 is applied first; a record is taken by the first rule whose source it matches.
    pub priority: u32,
}

impl AllocationSpec {
    /// Checks the spec's shape (the keys themselves are checked where they are understood:
    /// by the service, against the report's keys).
    pub fn check(&self) -> Result<(), ValidationError> {
        let bad = |what: &'static str, value: String, reason: &str| ValidationError::Setting {
            what,
            value,
            reason: reason.to_owned(),
        };
        if self.source.is_empty() {
            return Err(bad(
                "allocation source",
                String::new(),
                "give at least one KEY=VALUE",
            ));
        }
        if self.source.len() > MAX_SOURCE_KEYS {
            return Err(bad(
                "allocation source",
                format!("{} keys", self.source.len()),
                "at most 20 keys",
            ));
        }
        for (key, values) in &self.source {
            if values.is_empty() || values.len() > MAX_SOURCE_VALUES {
                return Err(bad(
                    "allocation source",
                    key.clone(),
                    "each key takes 1 to 100 values",
                ));
            }
            for v in values {
                check_value("allocation source value", v)?;
            }
        }
        if self.targets.is_empty() || self.targets.len() > MAX_ALLOCATION_TARGETS {
            return Err(bad(
                "allocation targets",
                format!("{} targets", self.targets.len()),
                "give 1 to 100 targets",
            ));
        }
        for (i, t) in self.targets.iter().enumerate() {
            check_value("allocation target", t)?;
            if t == "(none)" {
                return Err(bad(
                    "allocation target",
                    t.clone(),
                    "a share must go to a value, not to (none)",
                ));
            }
            if self.targets[..i].contains(t) {
                return Err(bad("allocation target", t.clone(), "named twice"));
            }
        }
        if !(1..=MAX_PRIORITY).contains(&self.priority) {
            return Err(bad(
                "allocation priority",
                self.priority.to_string(),
                "must be 1 to 1000000 (1 applies first)",
            ));
        }
        match self.method {
            AllocationMethod::Fixed => {
                if self.weights.len() != self.targets.len() {
                    return Err(bad(
                        "allocation weights",
                        format!(
                            "{} weights for {} targets",
                            self.weights.len(),
                            self.targets.len()
                        ),
                        "fixed takes one weight per target",
                    ));
                }
                let mut sum = Decimal::ZERO;
                for w in &self.weights {
                    if w.is_sign_negative() || w.scale() > 2 || *w > Decimal::ONE_HUNDRED {
                        return Err(bad(
                            "allocation weight",
                            w.to_string(),
                            "a percentage from 0 to 100 with at most two decimals",
                        ));
                    }
                    sum += *w;
                }
                if sum != Decimal::ONE_HUNDRED {
                    return Err(bad(
                        "allocation weights",
                        sum.to_string(),
                        "must sum to exactly 100",
                    ));
                }
            }
            _ if !self.weights.is_empty() => {
                return Err(bad(
                    "allocation weights",
                    format!("{} weights", self.weights.len()),
                    "only the fixed method takes weights",
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The fixed weights as basis points (hundredths of a percent), summing to 10,000.
    pub fn basis_points(&self) -> Vec<u32> {
        self.weights
            .iter()
            .map(|w| u32::try_from((*w * Decimal::ONE_HUNDRED).trunc().mantissa()).unwrap_or(0))
            .collect()
    }
}

fn check_value(what: &'static str, v: &str) -> Result<(), ValidationError> {
    if v.trim().is_empty() {
        return Err(ValidationError::Empty { what });
    }
    let len = v.chars().count();
    if len > MAX_ALLOCATION_VALUE_LEN {
        return Err(ValidationError::TooLong {
            what,
            value: crate::cut(v, 40).into_owned(),
            len,
            max: MAX_ALLOCATION_VALUE_LEN,
        });
    }
    if v.chars().any(char::is_control) {
        return Err(ValidationError::ControlCharacter {
            what,
            value: crate::cut(v, 40).into_owned(),
        });
    }
    Ok(())
}

/// One version of a rule: what it is from `start` on, and who made the change when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationRule {
    /// The rule (every version shares it).
    pub id: AllocationId,
    /// Its domain.
    pub domain: DomainId,
    /// 1 for the rule's creation, one more per change.
    pub version: u32,
    /// Unique among the domain's rules that are not deleted.
    pub name: Name,
    /// The first day this version applies (earlier days keep the earlier versions).
    pub start: NaiveDate,
    /// Source, targets, method.
    #[serde(flatten)]
    pub spec: AllocationSpec,
    /// Whether this version deletes the rule from `start` on.
    pub deleted: bool,
    /// Who made the change (the principal's description; never a secret).
    pub changed_by: String,
    /// When.
    pub changed_at: DateTime<Utc>,
}
