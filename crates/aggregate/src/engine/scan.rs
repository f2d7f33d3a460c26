//! The scans under a query: the cell each row adds to (`Layout`), column at a time in chunks,
//! into a dense array of `i128` sums, a hash map of `i128` sums, or 256-bit sums for rows and
//! totals past `i128`. `query.rs` lays the cells out and assembles the answer.

use std::sync::atomic::{AtomicBool, Ordering};

use ethnum::I256;

use super::columns::{Col, IdMap};
use super::Engine;

/// Rows per chunk of the column-at-a-time scan (fits L1 with its key and mask buffers).
const CHUNK: usize = 4096;

/// Lanes of sums in a dense scan over few cells (a power of two).
const LANES: usize = 4;

/// One group-by dimension of a query.
pub(super) struct Dim<'a> {
    pub(super) col: &'a Col,
    /// Maps the column's ids to group ids (project → project group), when not the identity.
    pub(super) map: Option<&'a [u32]>,
    pub(super) radix: u128,
}

/// What a scan needs to turn a record into its cell.
pub(super) struct Layout<'a> {
    pub(super) dims: &'a [Dim<'a>],
    pub(super) filters: &'a [(&'a Col, Vec<bool>)],
    pub(super) bucket_of_day: &'a [u32],
    pub(super) start: i32,
    pub(super) end: i32,
    pub(super) n_buckets: u128,
    pub(super) n_currency: u128,
    /// Set by the caller to stop the scan (its client went away).
    pub(super) cancel: &'a AtomicBool,
    /// Rows left out whatever the filters say, as a bitmap over the part's rows (an
    /// allocated query's moved source records: their cost goes to the targets instead).
    pub(super) exclude: Option<&'a [u64]>,
}

/// Whether bit `row` is set in `bits`.
#[inline]
pub(super) fn bit(bits: &[u64], row: usize) -> bool {
    bits.get(row >> 6)
        .is_some_and(|w| (w >> (row & 63)) & 1 == 1)
}

/// A flag never set: the scan of a query nobody cancels.
pub(super) static NEVER: AtomicBool = AtomicBool::new(false);

impl<'a> Layout<'a> {
    /// A layout that only filters rows of days `start..end` (no groups, one bucket).
    pub(super) fn filtering(filters: &'a [(&'a Col, Vec<bool>)], start: i32, end: i32) -> Self {
        Layout {
            dims: &[],
            filters,
            bucket_of_day: &[],
            start,
            end,
            n_buckets: 1,
            n_currency: 1,
            cancel: &NEVER,
            exclude: None,
        }
    }
}

impl Engine {
    #[inline]
    pub(super) fn passes(layout: &Layout<'_>, i: usize) -> bool {
        layout.exclude.is_none_or(|ex| !bit(ex, i))
            && layout
                .filters
                .iter()
                .all(|(col, allowed)| allowed.get(col.get(i)).copied().unwrap_or(false))
    }

    #[inline]
    fn group_key(layout: &Layout<'_>, i: usize) -> u128 {
        let mut key: u128 = 0;
        for d in layout.dims {
            let v = d.col.get(i);
            let v = d.map.map_or(v, |m| m[v] as usize);
            key = key * d.radix + v as u128;
        }
        key
    }

    /// Calls `f(first_row, keys, keep)` (which answers whether to go on) for each chunk of the rows in `ranges`: each row's
    /// cell index (currency innermost, then bucket, then the dims in reverse order; it must
    /// fit a `usize`) and whether it passes the day range and the filters. Column at a time:
    /// each pass is a tight loop over one typed slice. Stops early when the query is cancelled.
    pub(super) fn for_each_chunk(
        &self,
        ranges: &[(usize, usize)],
        layout: &Layout<'_>,
        mut f: impl FnMut(usize, &[usize], &[bool]) -> bool,
    ) {
        let n_currency = usize::try_from(layout.n_currency).unwrap_or(1);
        let bucket_stride = n_currency;
        let mut stride = n_currency * usize::try_from(layout.n_buckets).unwrap_or(1);
        let mut strides = vec![0usize; layout.dims.len()];
        for (s, d) in strides.iter_mut().zip(layout.dims).rev() {
            *s = stride;
            stride = stride.saturating_mul(usize::try_from(d.radix).unwrap_or(1));
        }
        let mut keys = vec![0usize; CHUNK];
        let mut keep = vec![true; CHUNK];
        for &(lo, hi) in ranges {
            let mut chunk_start = lo;
            while chunk_start < hi {
                if layout.cancel.load(Ordering::Relaxed) {
                    return;
                }
                let n = CHUNK.min(hi - chunk_start);
                let range = chunk_start..chunk_start + n;
                let keys = &mut keys[..n];
                let keep = &mut keep[..n];
                for (k, d) in keep.iter_mut().zip(&self.day[range.clone()]) {
                    *k = (layout.start..layout.end).contains(d);
                }
                for (col, allowed) in layout.filters {
                    col.for_each(range.clone(), |j, v| {
                        keep[j] &= allowed.get(v).copied().unwrap_or(false);
                    });
                }
                if let Some(ex) = layout.exclude {
                    for (j, k) in keep.iter_mut().enumerate() {
                        *k &= !bit(ex, chunk_start + j);
                    }
                }
                for (k, d) in keys.iter_mut().zip(&self.day[range.clone()]) {
                    let day = usize::try_from(*d - layout.start).unwrap_or(0);
                    *k = layout.bucket_of_day.get(day).copied().unwrap_or(0) as usize
                        * bucket_stride;
                }
                self.currency.for_each(range.clone(), |j, v| keys[j] += v);
                for (d, stride) in layout.dims.iter().zip(&strides) {
                    match d.map {
                        None => d.col.for_each(range.clone(), |j, v| keys[j] += v * stride),
                        Some(m) => d
                            .col
                            .for_each(range.clone(), |j, v| keys[j] += m[v] as usize * stride),
                    }
                }
                if !f(chunk_start, keys, keep) {
                    return;
                }
                chunk_start += n;
            }
        }
    }

    pub(super) fn scan_dense(
        &self,
        ranges: &[(usize, usize)],
        layout: &Layout<'_>,
        cells: usize,
        checked: bool,
        (cap, over): (Option<usize>, &mut Option<usize>),
        cost: impl Fn(usize) -> i128,
    ) -> Option<Vec<(u128, I256)>> {
        // Few cells (a consolidated total, a handful of months): consecutive rows add to the
        // same cell, one long chain of dependent adds through memory. Separate lanes of sums
        // for neighbouring rows break the chain; they are added up at the end.
        let lanes = if cells <= 256 { LANES } else { 1 };
        let mut sums = vec![0i128; cells * lanes];
        let mut touched = vec![false; cells];
        let mut overflow = false;
        self.for_each_chunk(ranges, layout, |chunk_start, keys, keep| {
            if checked {
                for (j, k) in keys.iter().enumerate() {
                    if keep[j] {
                        let at = (j & (lanes - 1)) * cells + *k;
                        let (v, o) = sums[at].overflowing_add(cost(chunk_start + j));
                        sums[at] = v;
                        overflow |= o;
                        touched[*k] = true;
                    }
                }
            } else {
                // i64 inputs: fewer than 2^64 of them cannot overflow an i128 sum.
                for (j, k) in keys.iter().enumerate() {
                    if keep[j] {
                        sums[(j & (lanes - 1)) * cells + *k] += cost(chunk_start + j);
                        touched[*k] = true;
                    }
                }
            }
            true
        });
        let n = touched.iter().filter(|t| **t).count();
        if cap.is_some_and(|c| n > c) {
            *over = Some(n);
            return Some(Vec::new()); // refused by the caller, nothing decoded
        }
        let mut out = Vec::with_capacity(n);
        for (k, _) in touched.iter().enumerate().filter(|(_, t)| **t) {
            let mut total = 0i128;
            for lane in 0..lanes {
                let (v, o) = total.overflowing_add(sums[lane * cells + k]);
                total = v;
                overflow |= o;
            }
            out.push((k as u128, I256::from(total)));
        }
        if overflow {
            return None; // the caller sums again in 256 bits
        }
        Some(out)
    }

    /// The sparse answer's fast path: cells (they fit a `usize`) summed in an FxHash map of
    /// `i128`, keys computed column at a time. `None` when a sum overflows `i128` (the caller
    /// sums again in 256 bits); past `cap` cells it stops, sets `over` and returns nothing.
    pub(super) fn scan_hashed(
        &self,
        ranges: &[(usize, usize)],
        layout: &Layout<'_>,
        (cap, over): (Option<usize>, &mut Option<usize>),
        cost: impl Fn(usize) -> i128,
    ) -> Option<Vec<(u128, I256)>> {
        let mut sums: IdMap<usize, i128> = IdMap::default();
        let mut overflow = false;
        self.for_each_chunk(ranges, layout, |chunk_start, keys, keep| {
            for (j, k) in keys.iter().enumerate() {
                if keep[j] {
                    let sum = sums.entry(*k).or_insert(0);
                    let (v, o) = sum.overflowing_add(cost(chunk_start + j));
                    *sum = v;
                    overflow |= o;
                }
            }
            if cap.is_some_and(|c| sums.len() > c) {
                *over = Some(sums.len());
                return false;
            }
            !overflow
        });
        if overflow {
            return None;
        }
        if over.is_some() {
            return Some(Vec::new()); // refused by the caller, nothing decoded
        }
        Some(
            sums.into_iter()
                .map(|(k, v)| (k as u128, I256::from(v)))
                .collect(),
        )
    }

    pub(super) fn scan_sparse(
        &self,
        ranges: &[(usize, usize)],
        layout: &Layout<'_>,
        cap: Option<usize>,
        cost: impl Fn(usize) -> i128,
    ) -> Vec<(u128, I256)> {
        // 256-bit sums: rows at Decimal's limit at any scale, over any number of rows, stay
        // exact; only a total no Decimal can hold fails, and only the queries that include it.
        let mut sums: IdMap<u128, I256> = IdMap::default();
        for &(lo, hi) in ranges {
            let first_big = self.big.partition_point(|(row, _)| *row < lo);
            let mut big = self.big[first_big..].iter().peekable();
            for i in lo..hi {
                if i % 4096 == 0 && layout.cancel.load(Ordering::Relaxed) {
                    return Vec::new(); // the caller answers Cancelled
                }
                let wide = big.next_if(|(row, _)| *row == i).map(|(_, v)| *v);
                if !(layout.start..layout.end).contains(&self.day[i]) || !Self::passes(layout, i) {
                    continue;
                }
                let day = usize::try_from(self.day[i] - layout.start).unwrap_or(0);
                let key = (Self::group_key(layout, i) * layout.n_buckets
                    + u128::from(layout.bucket_of_day[day]))
                    * layout.n_currency
                    + self.currency.get(i) as u128;
                *sums.entry(key).or_insert(I256::ZERO) +=
                    wide.unwrap_or_else(|| I256::from(cost(i)));
                if cap.is_some_and(|c| sums.len() > c) {
                    return sums.into_iter().collect(); // over the caller's bound: refused
                }
            }
        }
        sums.into_iter().collect()
    }
}
