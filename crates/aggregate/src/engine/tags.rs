//! Keyed columns: one dictionary-encoded column per key, value id 0 for a row without a value.
//! A key first seen mid-load gets a column backfilled with 0 for the rows before it. Tags use
//! one set (a column per tag key), FOCUS attributes another (a column per attribute). The
//! second half: how a query reads them (`tag_names`, `keyed_filter`) and `tag_summary`.
//!
//! One column per key (rather than one column of whole tag sets) keeps memory proportional to
//! rows × keys at one or two bytes each, however many distinct combinations the tags form
//! (resource-level tags make nearly every set distinct), and a `tag:KEY` scan reads exactly
//! one column like any other dimension.

use cloudbill_columnar::TextColumn;
use cloudbill_core::Tags;

use std::collections::BTreeMap;

use super::catalog::{Dict, NONE};
use super::columns::Col;
use super::scan::Layout;
use super::{day_number, Engine};
use crate::{GroupKey, Query, QueryError};

/// The tag columns of an engine.
#[derive(Debug, Clone, Default)]
pub(super) struct TagColumns {
    /// Key names; a key's id indexes `cols` and `values`.
    keys: Dict,
    cols: Vec<Col>,
    /// Each key's values; id 0 is `""`, no value.
    values: Vec<Dict>,
    /// A row's value id per key (reused by `push`).
    row: Vec<u32>,
}

impl TagColumns {
    /// Bytes the columns and their dictionaries hold.
    pub(super) fn memory(&self) -> usize {
        self.keys.memory()
            + self.cols.iter().map(Col::memory).sum::<usize>()
            + self.values.iter().map(Dict::memory).sum::<usize>()
    }

    /// The id of `key`, if any row has it.
    pub(super) fn key(&self, key: &str) -> Option<usize> {
        self.keys.get(key).map(|k| k as usize)
    }

    /// The keys, by id.
    pub(super) fn keys(&self) -> &[String] {
        self.keys.values()
    }

    /// Key `k`'s column.
    pub(super) fn column(&self, k: usize) -> &Col {
        &self.cols[k]
    }

    /// Key `k`'s values by id (id 0: no value).
    pub(super) fn values(&self, k: usize) -> &[String] {
        self.values[k].values()
    }

    /// The id of `key`, adding its column (0 for the `rows` rows before) if it is new.
    fn add_key(&mut self, key: &str, rows: usize) -> usize {
        let k = self.keys.id(key) as usize;
        if k == self.cols.len() {
            let mut col = Col::with_capacity(0);
            col.extend_repeat(0, rows);
            self.cols.push(col);
            let mut values = Dict::default();
            values.id("");
            self.values.push(values);
        }
        k
    }

    /// Appends one row with `tags`, after `rows` rows.
    pub(super) fn push(&mut self, tags: &Tags, rows: usize) {
        self.push_pairs(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), rows);
    }

    /// Appends one row with these (key, value) pairs, after `rows` rows.
    pub(super) fn push_pairs<'v>(
        &mut self,
        pairs: impl Iterator<Item = (&'v str, &'v str)>,
        rows: usize,
    ) {
        self.row.clear();
        self.row.resize(self.cols.len(), 0);
        for (key, value) in pairs {
            let k = self.add_key(key, rows);
            if k >= self.row.len() {
                self.row.resize(k + 1, 0);
            }
            self.row[k] = self.values[k].id(value);
        }
        for (col, id) in self.cols.iter_mut().zip(&self.row) {
            col.push(*id);
        }
    }

    /// Appends a partition's `rows` rows, after `before` rows: `sets` is its tags column (one
    /// tag set per row, as `cloudbill_columnar::tags_text` writes them).
    pub(super) fn extend(
        &mut self,
        sets: &TextColumn<'_>,
        rows: usize,
        before: usize,
    ) -> Result<(), QueryError> {
        // Each distinct set of the partition parsed once, as (key id, value id) pairs.
        let mut parsed: Vec<Vec<(usize, u32)>> = Vec::with_capacity(sets.values.len());
        for text in &sets.values {
            let tags = cloudbill_columnar::tags_from_text(text)
                .map_err(|e| QueryError::Corrupt(e.to_string()))?;
            let mut pairs = Vec::with_capacity(tags.len());
            for (key, value) in &tags {
                let k = self.add_key(key, before);
                pairs.push((k, self.values[k].id(value)));
            }
            parsed.push(pairs);
        }
        let mut lookup = vec![0u32; sets.values.len()];
        for (k, col) in self.cols.iter_mut().enumerate() {
            lookup.fill(0);
            for (set, pairs) in parsed.iter().enumerate() {
                if let Some((_, v)) = pairs.iter().find(|(key, _)| *key == k) {
                    lookup[set] = *v;
                }
            }
            col.extend_mapped(sets, &lookup, rows);
        }
        Ok(())
    }

    /// Appends a partition's `rows` values of `key` (a text column; `""` is no value), after
    /// `before` rows. A column without any value adds no key; call [`TagColumns::pad`] after
    /// the partition's keys so every column has every row.
    pub(super) fn extend_values(
        &mut self,
        key: &str,
        column: &TextColumn<'_>,
        rows: usize,
        before: usize,
    ) {
        if self.key(key).is_none() && column.values.iter().all(|v| v.is_empty()) {
            return;
        }
        let k = self.add_key(key, before);
        let lookup: Vec<u32> = column.values.iter().map(|v| self.values[k].id(v)).collect();
        self.cols[k].extend_mapped(column, &lookup, rows);
    }

    /// Gives every column `rows` rows (rows a partition did not have the key for: 0).
    pub(super) fn pad(&mut self, rows: usize) {
        for col in &mut self.cols {
            let missing = rows.saturating_sub(col.len());
            if missing > 0 {
                col.extend_repeat(0, missing);
            }
        }
    }

    /// The same keys and values with no rows (columns of the same widths, room for `rows`):
    /// what an engine update copies rows into, their ids unchanged.
    pub(super) fn emptied(&self, rows: usize) -> Self {
        Self {
            keys: self.keys.clone(),
            cols: self.cols.iter().map(|c| c.empty_like(rows)).collect(),
            values: self.values.clone(),
            row: Vec::new(),
        }
    }

    /// Appends rows `range` of `old` (whose keys and values this started from, see
    /// [`TagColumns::emptied`]), after `before` rows; keys `old` lacks get no value.
    pub(super) fn extend_from(
        &mut self,
        old: &TagColumns,
        range: std::ops::Range<usize>,
        before: usize,
    ) {
        let rows = range.len();
        for (col, src) in self.cols.iter_mut().zip(&old.cols) {
            col.extend_from(src, range.clone());
        }
        self.pad(before + rows);
    }

    /// Gives back the slack of grown columns.
    pub(super) fn shrink_to_fit(&mut self) {
        for col in &mut self.cols {
            col.shrink_to_fit();
        }
        self.row = Vec::new();
    }
}

impl Engine {
    /// The keyed columns of `key` (a tag or an attribute) and the name of its column there.
    pub(super) fn keyed<'k>(&self, key: &'k GroupKey) -> Option<(&TagColumns, &'k str)> {
        match key {
            GroupKey::Tag(t) => Some((&self.tags, t.key())),
            GroupKey::Attribute(a) => Some((&self.attrs, a.snake_name())),
            _ => None,
        }
    }

    /// The id of `key`'s column (a tag or an attribute), if any row has it.
    pub(super) fn keyed_column(&self, key: &GroupKey) -> Option<usize> {
        self.keyed(key)
            .and_then(|(columns, name)| columns.key(name))
    }

    /// The values of tag or attribute `key` as results show them, by id: `(none)` for id 0
    /// (no value), and only that for a key no row has (a query reads it as no value).
    pub(super) fn tag_names(&self, key: &GroupKey) -> Vec<String> {
        match self
            .keyed(key)
            .and_then(|(c, name)| c.key(name).map(|k| (c, k)))
        {
            Some((columns, k)) => columns
                .values(k)
                .iter()
                .enumerate()
                .map(|(id, v)| if id == 0 { NONE.to_owned() } else { v.clone() })
                .collect(),
            None => vec![NONE.to_owned()],
        }
    }

    /// A filter on tag or attribute `key`: its column and the ids allowed there — values
    /// that are one of `values` (`(none)`: rows without a value); for a key no row has, the
    /// account column with every account or none allowed.
    pub(super) fn keyed_filter(&self, key: &GroupKey, values: &[String]) -> (&Col, Vec<bool>) {
        let wanted = |v: &str| values.iter().any(|x| x == v);
        match self
            .keyed(key)
            .and_then(|(columns, name)| columns.key(name).map(|k| (columns, k)))
        {
            Some((columns, k)) => (
                columns.column(k),
                columns
                    .values(k)
                    .iter()
                    .enumerate()
                    .map(|(id, v)| wanted(if id == 0 { NONE } else { v }))
                    .collect(),
            ),
            None => (&self.account, vec![wanted(NONE); self.dicts.account.len()]),
        }
    }

    /// The tags of the records `query` selects (its range and filters; its group-by, sort
    /// and limit are ignored): each key with its values, the most used first, and how many
    /// records carry each. At most [`crate::MAX_TAG_VALUES_LISTED`] values are listed per
    /// key; `value_count` counts them all.
    pub fn tag_summary(&self, query: &Query) -> Result<Vec<crate::TagSummary>, QueryError> {
        if self.tags_skipped {
            return Err(QueryError::NotLoaded("tags".into()));
        }
        let start = day_number(query.range.start());
        let end = day_number(query.range.end());
        let filters = self.filters(query)?;
        // Per key (this engine's ids; a layer's are a prefix of them), records per value id.
        let mut counts: Vec<Vec<u64>> = (0..self.tags.keys().len())
            .map(|k| vec![0u64; self.tags.values(k).len()])
            .collect();
        for (part, live) in self.parts() {
            let part_filters = self.part_filters(part, query, &filters);
            let layout = Layout::filtering(&part_filters, start, end);
            let (lo, hi) = part.rows_of(start, end);
            let selected: Vec<usize> = part
                .ranges(lo, hi, &part_filters, live)
                .into_iter()
                .flat_map(|(a, b)| a..b)
                .filter(|i| (start..end).contains(&part.day[*i]) && Self::passes(&layout, *i))
                .collect();
            for (k, counts) in counts.iter_mut().enumerate().take(part.tags.keys().len()) {
                let col = part.tags.column(k);
                for i in &selected {
                    counts[col.get(*i)] += 1;
                }
            }
        }
        let mut keys: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
        for ((k, key), counts) in self.tags.keys().iter().enumerate().zip(counts) {
            let names = self.tags.values(k);
            let values: Vec<(&str, u64)> = names
                .iter()
                .zip(counts)
                .skip(1) // id 0: rows without the tag
                .filter(|(_, n)| *n > 0)
                .map(|(v, n)| (v.as_str(), n))
                .collect();
            if !values.is_empty() {
                keys.insert(key, values);
            }
        }
        Ok(keys
            .into_iter()
            .map(|(key, mut values)| {
                values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                crate::TagSummary {
                    key: key.to_owned(),
                    value_count: values.len(),
                    records: values.iter().map(|(_, n)| n).sum(),
                    values: values
                        .into_iter()
                        .take(crate::MAX_TAG_VALUES_LISTED)
                        .map(|(value, records)| crate::TagValue {
                            value: value.to_owned(),
                            records,
                        })
                        .collect(),
                }
            })
            .collect())
    }
}
