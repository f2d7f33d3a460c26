//! Column storage: dictionary ids in the narrowest integer their cardinality allows, and
//! costs as scaled integers.

use cloudbill_columnar::TextColumn;

/// A dictionary-encoded column, stored in the narrowest integer its cardinality allows.
#[derive(Debug, Clone)]
pub(super) enum Col {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Col {
    pub(super) fn with_capacity(rows: usize) -> Self {
        Col::U8(Vec::with_capacity(rows))
    }

    /// Widens the column (once per width, ids only grow) until `max` fits.
    pub(super) fn fit(&mut self, max: u32) {
        match self {
            Col::U8(v) if max > u32::from(u8::MAX) => {
                let values = std::mem::take(v);
                *self = if max > u32::from(u16::MAX) {
                    Col::U32(values.into_iter().map(u32::from).collect())
                } else {
                    Col::U16(values.into_iter().map(u16::from).collect())
                };
            }
            Col::U16(v) if max > u32::from(u16::MAX) => {
                *self = Col::U32(std::mem::take(v).into_iter().map(u32::from).collect());
            }
            _ => {}
        }
    }

    pub(super) fn push(&mut self, id: u32) {
        self.fit(id);
        match self {
            Col::U8(v) => v.push(u8::try_from(id).unwrap_or(u8::MAX)),
            Col::U16(v) => v.push(u16::try_from(id).unwrap_or(u16::MAX)),
            Col::U32(v) => v.push(id),
        }
    }

    /// Appends `lookup[id]` for each partition row (`lookup` maps the partition's dictionary
    /// to the engine's).
    pub(super) fn extend_mapped(&mut self, column: &TextColumn<'_>, lookup: &[u32], rows: usize) {
        self.fit(lookup.iter().copied().max().unwrap_or(0));
        match self {
            Col::U8(v) => {
                let narrow: Vec<u8> = lookup
                    .iter()
                    .map(|x| u8::try_from(*x).unwrap_or(u8::MAX))
                    .collect();
                column.map_into(&narrow, v, rows);
            }
            Col::U16(v) => {
                let narrow: Vec<u16> = lookup
                    .iter()
                    .map(|x| u16::try_from(*x).unwrap_or(u16::MAX))
                    .collect();
                column.map_into(&narrow, v, rows);
            }
            Col::U32(v) => column.map_into(lookup, v, rows),
        }
    }

    /// Bytes the column's values hold.
    pub(super) fn memory(&self) -> usize {
        match self {
            Col::U8(v) => v.capacity(),
            Col::U16(v) => v.capacity() * 2,
            Col::U32(v) => v.capacity() * 4,
        }
    }

    /// Rows held.
    pub(super) fn len(&self) -> usize {
        match self {
            Col::U8(v) => v.len(),
            Col::U16(v) => v.len(),
            Col::U32(v) => v.len(),
        }
    }

    pub(super) fn shrink_to_fit(&mut self) {
        match self {
            Col::U8(v) => v.shrink_to_fit(),
            Col::U16(v) => v.shrink_to_fit(),
            Col::U32(v) => v.shrink_to_fit(),
        }
    }

    /// An empty column of the same width, with room for `rows` values.
    pub(super) fn empty_like(&self, rows: usize) -> Self {
        match self {
            Col::U8(_) => Col::U8(Vec::with_capacity(rows)),
            Col::U16(_) => Col::U16(Vec::with_capacity(rows)),
            Col::U32(_) => Col::U32(Vec::with_capacity(rows)),
        }
    }

    /// Appends rows `range` of `src` (ids of the same dictionary).
    pub(super) fn extend_from(&mut self, src: &Col, range: std::ops::Range<usize>) {
        let widest = match src {
            Col::U8(_) => u32::from(u8::MAX),
            Col::U16(_) => u32::from(u16::MAX),
            Col::U32(_) => u32::MAX,
        };
        self.fit(widest);
        match (self, src) {
            (Col::U8(d), Col::U8(s)) => d.extend_from_slice(&s[range]),
            (Col::U16(d), Col::U16(s)) => d.extend_from_slice(&s[range]),
            (Col::U32(d), Col::U32(s)) => d.extend_from_slice(&s[range]),
            (Col::U16(d), Col::U8(s)) => d.extend(s[range].iter().map(|x| u16::from(*x))),
            (Col::U32(d), Col::U8(s)) => d.extend(s[range].iter().map(|x| u32::from(*x))),
            (Col::U32(d), Col::U16(s)) => d.extend(s[range].iter().map(|x| u32::from(*x))),
            // `fit` made the destination at least as wide as the source.
            _ => {}
        }
    }

    /// Appends `value` `n` times.
    pub(super) fn extend_repeat(&mut self, value: u32, n: usize) {
        self.fit(value);
        match self {
            Col::U8(v) => v.extend(std::iter::repeat_n(
                u8::try_from(value).unwrap_or(u8::MAX),
                n,
            )),
            Col::U16(v) => {
                v.extend(std::iter::repeat_n(
                    u16::try_from(value).unwrap_or(u16::MAX),
                    n,
                ));
            }
            Col::U32(v) => v.extend(std::iter::repeat_n(value, n)),
        }
    }

    /// Appends `lookup[i]` for each index `i` of `indexes`.
    pub(super) fn extend_indexed(&mut self, indexes: &[u8], lookup: &[u32]) {
        self.fit(lookup.iter().copied().max().unwrap_or(0));
        match self {
            Col::U8(v) => v.extend(
                indexes
                    .iter()
                    .map(|i| u8::try_from(lookup[usize::from(*i)]).unwrap_or(u8::MAX)),
            ),
            Col::U16(v) => v.extend(
                indexes
                    .iter()
                    .map(|i| u16::try_from(lookup[usize::from(*i)]).unwrap_or(u16::MAX)),
            ),
            Col::U32(v) => v.extend(indexes.iter().map(|i| lookup[usize::from(*i)])),
        }
    }

    /// Calls `f(j, value)` for each row `range.start + j` of `range`, monomorphised per width.
    #[inline]
    pub(super) fn for_each(&self, range: std::ops::Range<usize>, mut f: impl FnMut(usize, usize)) {
        match self {
            Col::U8(v) => v[range]
                .iter()
                .enumerate()
                .for_each(|(j, x)| f(j, usize::from(*x))),
            Col::U16(v) => v[range]
                .iter()
                .enumerate()
                .for_each(|(j, x)| f(j, usize::from(*x))),
            Col::U32(v) => v[range]
                .iter()
                .enumerate()
                .for_each(|(j, x)| f(j, *x as usize)),
        }
    }

    #[inline]
    pub(super) fn get(&self, i: usize) -> usize {
        match self {
            Col::U8(v) => usize::from(v[i]),
            Col::U16(v) => usize::from(v[i]),
            Col::U32(v) => v[i] as usize,
        }
    }
}

/// Maps keyed by ids the store gave (fast hashing, no flooding concern).
pub(super) type IdMap<K, V> = cloudbill_columnar::FxMap<K, V>;

/// Costs at one scale: `i64` when every amount fits, `i128` otherwise.
#[derive(Debug, Clone)]
pub(super) enum Costs {
    Narrow(Vec<i64>),
    Wide(Vec<i128>),
}

impl Costs {
    /// Bytes the costs hold.
    pub(super) fn memory(&self) -> usize {
        match self {
            Costs::Narrow(v) => v.capacity() * 8,
            Costs::Wide(v) => v.capacity() * 16,
        }
    }
}

/// An engine column, by name (the builder's and the loader's columns are indexed by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Account,
    Project,
    Provider,
    CloudAccount,
    Region,
    Service,
    UsageType,
    InstanceType,
    Currency,
    Category,
}

impl Slot {
    /// How many columns an engine has.
    pub(super) const COUNT: usize = 10;
    /// The columns a row's dictionary ids go to, in [`super::builder::Builder::push`] order.
    pub(super) const PER_ROW: [Slot; 8] = [
        Slot::Provider,
        Slot::CloudAccount,
        Slot::Region,
        Slot::Service,
        Slot::UsageType,
        Slot::InstanceType,
        Slot::Currency,
        Slot::Category,
    ];
    /// The text dimensions a loader may leave out when a query does not name them.
    pub(super) const OPTIONAL: [Slot; 5] = [
        Slot::CloudAccount,
        Slot::Region,
        Slot::Service,
        Slot::UsageType,
        Slot::InstanceType,
    ];

    /// The column a group-by key reads (tags and attributes are read through their own
    /// columns; their rows' account column stands in).
    pub(super) fn of(key: &crate::GroupKey) -> Slot {
        use crate::GroupKey;
        match key {
            GroupKey::Provider => Slot::Provider,
            GroupKey::Project | GroupKey::ProjectGroup => Slot::Project,
            GroupKey::ServiceAccount | GroupKey::Tag(_) | GroupKey::Attribute(_) => Slot::Account,
            GroupKey::CloudAccount => Slot::CloudAccount,
            GroupKey::Region => Slot::Region,
            GroupKey::Service => Slot::Service,
            GroupKey::UsageType => Slot::UsageType,
            GroupKey::InstanceType => Slot::InstanceType,
            GroupKey::Currency => Slot::Currency,
            GroupKey::ChargeCategory => Slot::Category,
        }
    }

    /// The optional column of a group-by key, if it is one.
    pub(super) fn optional(key: &crate::GroupKey) -> Option<Slot> {
        Some(Slot::of(key)).filter(|slot| Slot::OPTIONAL.contains(slot))
    }
}

/// One value per engine column, indexed by [`Slot`].
#[derive(Debug, Clone, Default)]
pub(super) struct BySlot<T>(pub(super) [T; Slot::COUNT]);

impl<T> std::ops::Index<Slot> for BySlot<T> {
    type Output = T;

    fn index(&self, slot: Slot) -> &T {
        &self.0[slot as usize]
    }
}

impl<T> std::ops::IndexMut<Slot> for BySlot<T> {
    fn index_mut(&mut self, slot: Slot) -> &mut T {
        &mut self.0[slot as usize]
    }
}
