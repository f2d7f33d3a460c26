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
//! no network; depends only on `cloudbill-core` and `cloudbill-columnar` (and the csv,
//! gzip and Parquet codecs).

mod error;
mod export;
mod import;
pub mod limits;
mod parquet;
mod stream;

pub use error::{ImportError, RowError};
pub use export::{
    column_kind, export_columns, write_focus, ExportRow, Presence, ValueKind, COLUMNS,
    DEFAULT_UNIT, OWN_COLUMNS,
};
pub use parquet::{write_focus_parquet, ParquetError, ROW_GROUP_ROWS};
pub use stream::{ExportPlan, FocusWriter, ROW_GROUP_BYTES};

/// The file formats of a FOCUS export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// CSV with a header ([`write_focus`]).
    #[default]
    Csv,
    /// Parquet with typed columns ([`write_focus_parquet`]).
    Parquet,
}

impl ExportFormat {
    /// The format a file name asks for: Parquet for a name ending in `.parquet`, else CSV.
    pub fn for_file_name(name: &str) -> Self {
        if name.to_ascii_lowercase().ends_with(".parquet") {
            ExportFormat::Parquet
        } else {
            ExportFormat::Csv
        }
    }

    /// Writes `rows` in this format (all in hand; [`ExportPlan`] and [`FocusWriter`] write
    /// an export batch by batch).
    pub fn write(
        self,
        out: impl std::io::Write + Send,
        rows: &[ExportRow<'_>],
    ) -> Result<(), std::io::Error> {
        let mut plan = ExportPlan::new();
        plan.observe(rows)?;
        let mut w = FocusWriter::new(self, out, &plan)?;
        w.write(rows)?;
        w.finish()
    }
}
pub use import::{
    encode_bill, for_each_record, open_bill, parquet_to_csv, read, BillFormat, ImportOptions,
    ImportedBill, OpenedBill, BILLING_PERIOD_SLACK_DAYS, MAX_HEADER_BYTES, SPAN_TAG,
};

#[doc(no_inline)]
pub use cloudbill_core::CostRecord;
