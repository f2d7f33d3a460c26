//! Bills in files: FOCUS (1.0–1.2) and AWS Cost and Usage Report CSV in, FOCUS 1.2 CSV out.
//!
//! [`read`] streams a CSV from any `Read` and maps each row to a [`CostRecord`] exactly
//! (amounts through [`cloudbill_core::parse_decimal`], scientific notation included). Column
//! order is free; unknown columns and `x_` columns are ignored; a UTF-8 BOM, CRLF line ends,
//! quoted fields, empty cells and the `NULL` token are handled.
//!
//! **Charges spanning several days** are kept whole on the UTC day they start (as AWS Cost
//! Explorer and the CUR month assignment do), and their span is recorded in the tag
//! `cloudbill:charge-period` (`start/end`, RFC 3339). Splitting them evenly would create
//! amounts with more decimals than the bill has.
//!
//! **Architecture invariant:** pure mapping over `Read`/`Write`: no file system, no database,
//! depends only on `cloudbill-core`.

mod error;
mod export;
mod import;
pub mod limits;

pub use error::{ImportError, RowError};
pub use export::{extra_attributes, write_focus, ExportRow, FOCUS_EXPORT_COLUMNS};
pub use import::{
    encode_bill, for_each_record, read, BillFormat, ImportOptions, ImportedBill,
    BILLING_PERIOD_SLACK_DAYS, SPAN_TAG,
};

#[doc(no_inline)]
pub use cloudbill_core::CostRecord;
