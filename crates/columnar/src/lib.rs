//! cloudbill's columnar partition codec: the cost records of one billing account and one month
//! as one compact, self-describing blob. Partitions are how the store keeps cost records (there
//! is no row table), so the codec is lossless: decoding gives back every field of every record,
//! exactly.
//!
//! The layout is column-wise, with a directory of named columns ([`mod@format`]), so that the
//! aggregation engine loads only the columns a query names, one at a time with tight loops, and
//! a new column needs no new format: partitions without it read as having no value in it.
//!
//! - [`mod@format`]: the layout, the column names and kinds.
//! - [`PartitionEncoder`] / [`encode_partition`] build an [`EncodedPartition`].
//! - [`Partition::decode`] reads one; columns are checked as they are read.
//! - [`legacy`]: the previous format (`CBP2`, fixed column order), read only to convert the
//!   partitions of an existing database.
//! - [`Interner`]: the string dictionary the encoder and the engine share.
//!
//! **Architecture invariant:** depends only on `cloudbill-core`; knows nothing of stores,
//! providers or queries.

mod decode;
mod encode;
pub mod format;
mod interner;
pub mod legacy;
mod varint;

pub use decode::{CostColumn, Partition, TextColumn};
pub use encode::{
    encode_partition, tags_from_text, tags_text, EncodedPartition, PartitionEncoder, RecordFields,
    MAX_EXTENSIONS,
};
pub use format::{Column, Kind};
pub use interner::{FxHasher, FxMap, Interner};
