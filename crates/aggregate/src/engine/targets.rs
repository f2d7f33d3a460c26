//! What a slice's targets are in the engine's numbering: each target's id, the ids a share
//! reads in a query's group-by dims, and whether each target passes the query's filters on
//! the target key (see `allocate.rs`).

use std::collections::BTreeMap;

use cloudbill_core::Lookup;

use super::catalog::NONE;
use super::columns::Col;
use super::Engine;
use crate::allocation::{Allocation, Slice};
use crate::{GroupKey, Query, QueryError};

impl Engine {
    /// Each target's id among the target key's values (projects, groups and accounts are
    /// always in the dictionaries, with the catalog; a tag value may not be).
    pub(super) fn target_ids(
        &self,
        slice: &Slice,
        tags: &mut BTreeMap<&GroupKey, Vec<String>>,
    ) -> Result<Vec<u32>, QueryError> {
        let gone = |value: &str| QueryError::AllocationTarget {
            rule: slice.rule.clone(),
            value: value.to_owned(),
        };
        let mut ids = Vec::with_capacity(slice.targets.len());
        match &slice.target {
            GroupKey::Tag(_) => {
                let names = self.tag_names(&slice.target);
                let mut extra: Vec<&str> = Vec::new();
                for t in &slice.targets {
                    let id = match names.iter().skip(1).position(|n| n == t) {
                        Some(at) => at + 1,
                        None => {
                            let at = extra.iter().position(|e| e == t).unwrap_or_else(|| {
                                extra.push(t);
                                extra.len() - 1
                            });
                            names.len() + at
                        }
                    };
                    ids.push(u32::try_from(id).map_err(|_| QueryError::Overflow)?);
                }
                if let Some(shown) = tags
                    .iter_mut()
                    .find(|(k, _)| ***k == slice.target)
                    .map(|(_, v)| v)
                {
                    // Every slice naming the key sees the same numbering: extras beyond the
                    // values already shown are appended once.
                    for e in extra {
                        if !shown.iter().skip(names.len()).any(|s| s == e) {
                            shown.push(e.to_owned());
                        }
                    }
                    ids.clear();
                    for t in &slice.targets {
                        let at = shown.iter().skip(1).position(|n| n == t).map(|p| p + 1);
                        ids.push(u32::try_from(at.unwrap_or(0)).map_err(|_| QueryError::Overflow)?);
                    }
                }
            }
            key => {
                for t in &slice.targets {
                    let lookup = Lookup::parse(t);
                    let raw = match key {
                        GroupKey::Project => self
                            .catalog
                            .projects
                            .iter()
                            .find(|p| lookup.matches(&p.name, p.id.as_uuid()))
                            .map(|p| p.id.to_string()),
                        GroupKey::ProjectGroup => self
                            .catalog
                            .groups
                            .iter()
                            .find(|g| lookup.matches(&g.name, g.id.as_uuid()))
                            .map(|g| g.id.to_string()),
                        _ => self
                            .catalog
                            .accounts
                            .iter()
                            .find(|a| lookup.matches(&a.name, a.id.as_uuid()))
                            .map(|a| a.id.to_string()),
                    }
                    .ok_or_else(|| gone(t))?;
                    let dict = if *key == GroupKey::ProjectGroup {
                        &self.dicts.group
                    } else {
                        self.dict(key)
                    };
                    ids.push(dict.get(&raw).ok_or_else(|| gone(t))?);
                }
            }
        }
        Ok(ids)
    }

    /// For one slice under `query`: each target's replacement ids per group-by dim, whether
    /// each target passes the filters that read the target key, and the filters that read
    /// the record instead (indexes into the query's filters).
    pub(super) fn slice_cells(
        &self,
        slice: &Slice,
        ids: &[u32],
        query: &Query,
        filters: &[(&Col, Vec<bool>)],
    ) -> SliceCells {
        let target = &slice.target;
        let replace = ids
            .iter()
            .map(|&id| {
                query
                    .group_by
                    .iter()
                    .map(|k| match (target, k) {
                        (GroupKey::Project, GroupKey::ProjectGroup) => {
                            self.project_group.get(id as usize).copied()
                        }
                        (t, k) if t == k => Some(id),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let mut rest = Vec::new();
        let mut passes = vec![true; ids.len()];
        for (f, (key, values)) in query.filters.iter().enumerate() {
            if !Allocation::reads_target(target, key) {
                rest.push(f);
                continue;
            }
            for (j, &id) in ids.iter().enumerate() {
                let ok = match (target, key) {
                    // A project, group-of-project or account filter: its allowed ids are the
                    // target's own.
                    (GroupKey::ProjectGroup, _) => Some(self.group_selected(values, id)),
                    (GroupKey::Tag(_), _) => {
                        let value = &slice.targets[j];
                        Some(values.iter().any(|v| v == value))
                    }
                    _ => filters[f].1.get(id as usize).copied(),
                };
                passes[j] &= ok.unwrap_or(false);
            }
        }
        SliceCells {
            replace,
            passes,
            rest,
        }
    }

    /// Whether group id `id` is one of the groups `values` name, or below one.
    fn group_selected(&self, values: &[String], id: u32) -> bool {
        let Some(raw) = self.dicts.group.values().get(id as usize) else {
            return false;
        };
        let mut at = self
            .catalog
            .groups
            .iter()
            .find(|g| g.id.to_string() == *raw);
        for _ in 0..64 {
            let Some(g) = at else { return false };
            if values
                .iter()
                .any(|v| Lookup::parse(v).matches(&g.name, g.id.as_uuid()))
            {
                return true;
            }
            at = g
                .parent
                .and_then(|p| self.catalog.groups.iter().find(|x| x.id == p));
        }
        raw == NONE && values.iter().any(|v| v == NONE)
    }
}

/// One slice's cells under a query (see `Engine::slice_cells`).
pub(super) struct SliceCells {
    /// Per target, per group-by dim: the id a share reads there (`None`: the record's).
    pub(super) replace: Vec<Vec<Option<u32>>>,
    /// Per target: whether it passes the filters that read the target key.
    pub(super) passes: Vec<bool>,
    /// The query's filters that read the record (indexes).
    pub(super) rest: Vec<usize>,
}
