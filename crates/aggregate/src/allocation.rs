//! Shared-cost allocation as the engine applies it: rules in priority order, each a source
//! (a conjunction of report filters), targets (values of one report key) and a method, and the
//! exact split of one amount by the largest-remainder method.
//!
//! A query that carries an [`Allocation`] moves each source record's cost to the targets, at
//! the record's own scale: the parts of every record add up to it exactly, so every total over
//! all groups is unchanged to the last decimal. docs/ALLOCATION.md is the user's account.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ethnum::I256;

use crate::{GroupKey, QueryError};

/// How a source amount is divided among the targets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// Equal parts.
    Even,
    /// In proportion to each target's own cost that day, in that currency (the report's
    /// metric; the cost of records no rule takes). A day on which no target has a positive
    /// cost leaves the source's cost where it was (unallocated).
    Proportional,
    /// Fixed percentages with two decimals, as basis points (hundredths of a percent) per
    /// target, in the targets' order; they sum to exactly 10,000.
    Fixed(Vec<u32>),
}

impl Method {
    /// `even`, `proportional` or `fixed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Even => "even",
            Method::Proportional => "proportional",
            Method::Fixed(_) => "fixed",
        }
    }
}

/// One rule as it applies over a span of days (a version of a rule from its start to the
/// next version's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slice {
    /// The rule's name (what a member sees of the source).
    pub rule: String,
    /// First day the slice applies.
    pub from: NaiveDate,
    /// The day after the last (`None`: open).
    pub until: Option<NaiveDate>,
    /// The records the rule takes: every key's filter holds (as a report's filters).
    pub source: BTreeMap<GroupKey, Vec<String>>,
    /// The key the targets are values of: `project`, `project_group`, `service_account` or
    /// `tag:KEY`.
    pub target: GroupKey,
    /// The targets, by name or id (as a filter names them), in the rule's order.
    pub targets: Vec<String>,
    /// How the source is divided.
    pub method: Method,
}

/// The rules a query allocates with, in priority order: a record is taken by the first rule
/// whose source it matches on its day; what a rule moved is never another rule's source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Allocation {
    /// The slices, the highest priority first.
    pub slices: Vec<Slice>,
}

impl Allocation {
    /// Whether `key` reads the value a slice with target key `target` replaces.
    pub fn reads_target(target: &GroupKey, key: &GroupKey) -> bool {
        match target {
            GroupKey::Project => matches!(key, GroupKey::Project | GroupKey::ProjectGroup),
            other => other == key,
        }
    }

    /// Whether the target key is one a rule may split across.
    pub fn target_key(key: &GroupKey) -> Result<(), QueryError> {
        match key {
            GroupKey::Project
            | GroupKey::ProjectGroup
            | GroupKey::ServiceAccount
            | GroupKey::Tag(_) => Ok(()),
            other => Err(QueryError::UnknownKey {
                key: other.to_string(),
                expected: "project, project_group, service_account, tag:KEY",
            }),
        }
    }
}

/// Splits `units` (a non-negative count of the amount's smallest unit) in proportion to
/// `weights` (non-negative, not all zero) by the largest-remainder method: each part is
/// `floor(units × w / W)`; the units left over (fewer than the number of targets) go one
/// each to the parts with the largest remainders, ties to the earlier target. The parts sum
/// to `units` exactly. `None` when every weight is zero.
pub fn split(units: I256, weights: &[I256]) -> Option<Vec<I256>> {
    let total: I256 = weights.iter().copied().sum();
    if total <= I256::ZERO {
        return None;
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given = I256::ZERO;
    for w in weights {
        let product = units * *w;
        let q = product / total;
        parts.push(q);
        remainders.push(product - q * total);
        given += q;
    }
    let mut left = units - given;
    if left > I256::ZERO {
        let mut order: Vec<usize> = (0..weights.len()).collect();
        // Largest remainder first; ties keep the targets' order (the sort is stable).
        order.sort_by(|a, b| remainders[*b].cmp(&remainders[*a]));
        for i in order {
            if left == I256::ZERO {
                break;
            }
            parts[i] += I256::ONE;
            left -= I256::ONE;
        }
    }
    Some(parts)
}

/// [`split`] in `i128` when nothing can overflow (the common case: it is called once per
/// source record), in 256 bits otherwise.
pub(crate) fn split_fast(units: i128, weights: &[i128]) -> Option<Vec<i128>> {
    let total: i128 = weights.iter().try_fold(0i128, |a, w| a.checked_add(*w))?;
    if total <= 0 {
        return None;
    }
    // Equal weights (`even`): every remainder is the same, so the units left over go to the
    // first targets, one each — one division for all.
    if weights.iter().all(|w| *w == weights[0]) {
        let n = i128::try_from(weights.len()).ok()?;
        let (q, left) = (units / n, units % n);
        return Some((0..n).map(|i| q + i128::from(i < left)).collect());
    }
    // Products that fit 64 bits divide in 64 bits (the common case of fixed weights).
    if let (Ok(u), Ok(t)) = (u64::try_from(units), u64::try_from(total)) {
        let narrow: Option<Vec<u64>> = weights
            .iter()
            .map(|w| u64::try_from(*w).ok().and_then(|w| u.checked_mul(w)))
            .collect();
        if let Some(products) = narrow {
            let mut parts: Vec<i128> = products.iter().map(|p| i128::from(p / t)).collect();
            let left = units - parts.iter().sum::<i128>();
            if left > 0 {
                let mut order: Vec<usize> = (0..parts.len()).collect();
                order.sort_by(|a, b| (products[*b] % t).cmp(&(products[*a] % t)));
                for i in order.into_iter().take(usize::try_from(left).unwrap_or(0)) {
                    parts[i] += 1;
                }
            }
            return Some(parts);
        }
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut best: Option<(usize, i128)> = None;
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given = 0i128;
    for (i, w) in weights.iter().enumerate() {
        let product = units.checked_mul(*w)?;
        let q = product / total;
        let r = product - q * total;
        parts.push(q);
        remainders.push(r);
        if best.is_none_or(|(_, b)| r > b) {
            best = Some((i, r));
        }
        given += q;
    }
    let left = units - given;
    if left == 1 {
        // One unit left (always so for two targets): the largest remainder, earliest on ties.
        if let Some((i, _)) = best {
            parts[i] += 1;
        }
    } else if left > 1 {
        let mut order: Vec<usize> = (0..weights.len()).collect();
        order.sort_by(|a, b| remainders[*b].cmp(&remainders[*a]));
        for i in order.into_iter().take(usize::try_from(left).unwrap_or(0)) {
            parts[i] += 1;
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(v: &[i128]) -> Vec<I256> {
        v.iter().map(|x| I256::from(*x)).collect()
    }

    #[test]
    fn thirds_give_the_extra_unit_to_the_first_target() {
        // 100.00 in three: 33.34, 33.33, 33.33.
        assert_eq!(
            split(I256::from(10_000), &big(&[1, 1, 1])),
            Some(big(&[3334, 3333, 3333]))
        );
        assert_eq!(split_fast(10_000, &[1, 1, 1]), Some(vec![3334, 3333, 3333]));
    }

    #[test]
    fn the_largest_remainder_wins_over_order() {
        // 10 units by 1:2:2 → 2, 4, 4 exactly; 11 units → 2.2, 4.4, 4.4: floors 2, 4, 4, one
        // left, remainders .2 .4 .4: the second target (earliest of the largest).
        assert_eq!(split_fast(11, &[1, 2, 2]), Some(vec![2, 5, 4]));
        // 7 by 70/20/10 % → 4.9, 1.4, 0.7: floors 4, 1, 0; two left → first (.9) and third (.7).
        assert_eq!(split_fast(7, &[7000, 2000, 1000]), Some(vec![5, 1, 1]));
        assert_eq!(
            split(I256::from(7), &big(&[7000, 2000, 1000])),
            Some(big(&[5, 1, 1]))
        );
    }

    #[test]
    fn nothing_to_split_by() {
        assert_eq!(split_fast(5, &[0, 0]), None);
        assert_eq!(split(I256::from(5), &big(&[0, 0])), None);
    }

    #[test]
    fn overflow_falls_back() {
        assert_eq!(split_fast(i128::MAX / 2, &[i128::MAX / 2, 1]), None);
        let parts = split(I256::from(i128::MAX / 2), &big(&[i128::MAX / 2, 1])).unwrap();
        assert_eq!(
            parts.iter().copied().sum::<I256>(),
            I256::from(i128::MAX / 2)
        );
    }

    proptest::proptest! {
        #[test]
        fn parts_always_sum_to_the_whole(
            units in 0i128..1_000_000_000_000,
            weights in proptest::collection::vec(0i128..1_000_000_000, 1..8),
        ) {
            if let Some(parts) = split_fast(units, &weights) {
                proptest::prop_assert_eq!(parts.iter().sum::<i128>(), units);
                let wide = split(I256::from(units), &big(&weights)).unwrap();
                proptest::prop_assert_eq!(big(&parts), wide);
                // Each part is within one unit of its exact share.
                let total: i128 = weights.iter().sum();
                for (p, w) in parts.iter().zip(&weights) {
                    let exact_floor = units * w / total;
                    proptest::prop_assert!(*p == exact_floor || *p == exact_floor + 1);
                }
            } else {
                proptest::prop_assert!(weights.iter().all(|w| *w == 0));
            }
        }
    }
}
