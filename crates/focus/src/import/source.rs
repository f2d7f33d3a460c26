//! A bill as a cloud delivers it: CSV, gzip'd CSV, or Parquet; FOCUS, legacy CUR
//! (`lineItem/…`) or CUR 2.0 (`line_item_…`). [`open_bill`] finds which from the bytes and the
//! header and hands back a CSV stream the readers take; [`parquet_to_csv`] turns a Parquet file
//! into that CSV, exactly (decimals from their digits, doubles by their shortest text).

use std::io::{BufRead, BufReader, Cursor, Read, Write};

use parquet::file::reader::{ChunkReader, FileReader, SerializedFileReader};
use parquet::record::Field;

use super::BillFormat;
use crate::ImportError;

/// The longest header line [`open_bill`] reads (a CUR has a few hundred columns).
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// CUR 2.0's columns under the legacy CUR names the CUR reader knows (the columns it reads;
/// the others keep their names and are ignored).
const CUR2_NAMES: [(&str, &str); 32] = [
    ("line_item_usage_start_date", "lineItem/UsageStartDate"),
    ("line_item_usage_end_date", "lineItem/UsageEndDate"),
    ("line_item_unblended_cost", "lineItem/UnblendedCost"),
    ("line_item_unblended_rate", "lineItem/UnblendedRate"),
    ("line_item_currency_code", "lineItem/CurrencyCode"),
    ("line_item_product_code", "lineItem/ProductCode"),
    ("line_item_usage_account_id", "lineItem/UsageAccountId"),
    ("line_item_line_item_type", "lineItem/LineItemType"),
    ("line_item_usage_amount", "lineItem/UsageAmount"),
    ("line_item_usage_type", "lineItem/UsageType"),
    ("line_item_operation", "lineItem/Operation"),
    ("line_item_availability_zone", "lineItem/AvailabilityZone"),
    ("line_item_resource_id", "lineItem/ResourceId"),
    (
        "line_item_line_item_description",
        "lineItem/LineItemDescription",
    ),
    ("bill_payer_account_id", "bill/PayerAccountId"),
    (
        "bill_billing_period_start_date",
        "bill/BillingPeriodStartDate",
    ),
    ("bill_billing_period_end_date", "bill/BillingPeriodEndDate"),
    ("bill_invoice_id", "bill/InvoiceId"),
    ("bill_billing_entity", "bill/BillingEntity"),
    ("bill_invoicing_entity", "bill/InvoicingEntity"),
    ("bill_bill_type", "bill/BillType"),
    (
        "pricing_public_on_demand_cost",
        "pricing/publicOnDemandCost",
    ),
    (
        "pricing_public_on_demand_rate",
        "pricing/publicOnDemandRate",
    ),
    ("pricing_rate_id", "pricing/RateId"),
    ("pricing_unit", "pricing/unit"),
    ("product_region_code", "product/region"),
    ("product_instance_type", "product/instanceType"),
    ("product_sku", "product/sku"),
    ("product_location", "product/location"),
    ("product_product_family", "product/productFamily"),
    (
        "savings_plan_savings_plan_a_r_n",
        "savingsPlan/SavingsPlanARN",
    ),
    ("resource_tags", "resourceTags"),
];

/// A bill's CSV stream and its format.
pub struct OpenedBill<'a> {
    /// FOCUS or CUR (CUR 2.0 reads as CUR, its header renamed).
    pub format: BillFormat,
    /// The CSV, header first.
    pub csv: Box<dyn Read + Send + 'a>,
}

impl std::fmt::Debug for OpenedBill<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedBill")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Opens a CSV bill, gzip'd or not (found by its first bytes), and tells its format by its
/// header: `BilledCost` is FOCUS, `lineItem/UnblendedCost` a legacy CUR,
/// `line_item_unblended_cost` a CUR 2.0 (its header is renamed to the legacy names),
/// `CostInBillingCurrency` (any case) Azure cost details. `file`
/// names the source in errors. Parquet is not read here: see [`parquet_to_csv`].
pub fn open_bill<'a, R: Read + Send + 'a>(
    source: R,
    file: &str,
) -> Result<OpenedBill<'a>, ImportError> {
    let mut buffered = BufReader::new(source);
    let gzip = buffered
        .fill_buf()
        .map(|b| b.starts_with(&[0x1f, 0x8b]))
        .map_err(|e| io_error(file, &e))?;
    let mut plain: Box<dyn BufRead + Send + 'a> = if gzip {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    };
    let mut header = Vec::new();
    (&mut plain)
        .take(MAX_HEADER_BYTES as u64 + 1)
        .read_until(b'\n', &mut header)
        .map_err(|e| io_error(file, &e))?;
    if header.len() > MAX_HEADER_BYTES {
        return Err(header_error(
            file,
            format!("the header line is longer than {MAX_HEADER_BYTES} bytes"),
        ));
    }
    let names = header_names(&header, file)?;
    let has = |name: &str| names.iter().any(|n| n == name);
    let (format, header) = if has("BilledCost") {
        (BillFormat::Focus, header)
    } else if has("lineItem/UnblendedCost") {
        (BillFormat::Cur, header)
    } else if has("line_item_unblended_cost") {
        let product = names.iter().position(|n| n == "product");
        let (header, members) = cur2_header(&names, product.is_some(), file)?;
        if let (Some(product), false) = (product, members.is_empty()) {
            // Every row gains the product map's name and instance type as columns.
            let rows = Cur2Product {
                reader: csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(crate::limits::Bounded::new(plain)),
                product,
                members,
                record: csv::ByteRecord::new(),
                out: Vec::new(),
                at: 0,
            };
            return Ok(OpenedBill {
                format: BillFormat::Cur,
                csv: Box::new(Cursor::new(header).chain(rows)),
            });
        }
        (BillFormat::Cur, header)
    } else if names
        .iter()
        .any(|n| n.eq_ignore_ascii_case("CostInBillingCurrency"))
    {
        (BillFormat::AzureCost, header)
    } else {
        let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
        return Err(header_error(
            file,
            format!(
                "not a FOCUS, CUR or Azure cost details bill: no BilledCost, lineItem/UnblendedCost, line_item_unblended_cost or CostInBillingCurrency column (it has: {}{})",
                shown.join(", "),
                if names.len() > 8 { ", …" } else { "" }
            ),
        ));
    };
    Ok(OpenedBill {
        format,
        csv: Box::new(Cursor::new(header).chain(plain)),
    })
}

/// The header line's column names (a BOM and spaces trimmed).
fn header_names(line: &[u8], file: &str) -> Result<Vec<String>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(record
            .iter()
            .map(|n| n.trim_start_matches('\u{feff}').trim().to_owned())
            .collect()),
        Ok(false) => Err(header_error(file, "the file is empty".into())),
        Err(e) => Err(header_error(file, format!("unreadable header: {e}"))),
    }
}

/// The Azure cost details columns cloudbill reads, as it names them: a header's names are
/// matched without case (exports differ: `costInBillingCurrency`, `benefitId`).
const AZURE_NAMES: [&str; 34] = [
    "Date",
    "CostInBillingCurrency",
    "BillingCurrencyCode",
    "PaygCostInBillingCurrency",
    "SubscriptionId",
    "SubscriptionName",
    "BillingAccountId",
    "BillingAccountName",
    "BillingPeriodStartDate",
    "BillingPeriodEndDate",
    "ResourceGroup",
    "ResourceLocation",
    "ResourceId",
    "ResourceName",
    "MeterCategory",
    "MeterSubCategory",
    "MeterName",
    "MeterRegion",
    "ProductId",
    "ProductName",
    "ConsumedService",
    "ChargeType",
    "PricingModel",
    "Quantity",
    "UnitOfMeasure",
    "UnitPrice",
    "PayGPrice",
    "Tags",
    "BenefitId",
    "BenefitName",
    "PublisherName",
    "AvailabilityZone",
    "InvoiceId",
    "ChargePeriodEnd",
];

/// Older names of Azure cost details columns (EA), read as the newer one when the file lacks it.
const AZURE_ALIASES: [(&str, &str); 4] = [
    ("BillingCurrency", "BillingCurrencyCode"),
    ("SubscriptionGuid", "SubscriptionId"),
    ("InstanceId", "ResourceId"),
    ("ReservationId", "BenefitId"),
];

/// An Azure cost details header's names as cloudbill names its columns (others unchanged).
pub(super) fn azure_names(names: &[String]) -> Vec<String> {
    let canonical = |n: &str| {
        AZURE_NAMES
            .iter()
            .find(|c| c.eq_ignore_ascii_case(n))
            .map(|c| (*c).to_owned())
    };
    let mut renamed: Vec<String> = names
        .iter()
        .map(|n| canonical(n).unwrap_or_else(|| n.clone()))
        .collect();
    for (old, new) in AZURE_ALIASES {
        if renamed.iter().any(|n| n == new) {
            continue;
        }
        if let Some(n) = renamed.iter_mut().find(|n| n.eq_ignore_ascii_case(old)) {
            new.clone_into(n);
        }
    }
    renamed
}

/// The members of CUR 2.0's `product` map read into columns, under their legacy names (the
/// AWS FOCUS view reads ServiceName from `product['product_name']`).
const CUR2_PRODUCT_MEMBERS: [(&str, &str); 2] = [
    ("product_name", "product/ProductName"),
    ("instance_type", "product/instanceType"),
];

/// A CUR 2.0 header under the legacy names (and, with a `product` map, the columns of its
/// members the file lacks, after its own), and those members' keys.
fn cur2_header(
    names: &[String],
    product: bool,
    file: &str,
) -> Result<(Vec<u8>, Vec<&'static str>), ImportError> {
    let mut renamed: Vec<&str> = names
        .iter()
        .map(|n| {
            CUR2_NAMES
                .iter()
                .find(|(new, _)| new == n)
                .map_or(n.as_str(), |(_, old)| old)
        })
        .collect();
    let mut members = Vec::new();
    if product {
        for (member, column) in CUR2_PRODUCT_MEMBERS {
            if !renamed.contains(&column) {
                renamed.push(column);
                members.push(member);
            }
        }
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(renamed)
        .map_err(|e| header_error(file, e.to_string()))?;
    let header = out
        .into_inner()
        .map_err(|e| header_error(file, e.to_string()))?;
    Ok((header, members))
}

/// A CUR 2.0 file's rows, each with the members of its `product` map (JSON text) appended as
/// cells in [`CUR2_PRODUCT_MEMBERS`] order (empty when the map lacks one or is not JSON: the
/// map itself is not a field cloudbill checks).
struct Cur2Product<R> {
    reader: csv::Reader<R>,
    product: usize,
    /// The map's members appended, in order.
    members: Vec<&'static str>,
    record: csv::ByteRecord,
    out: Vec<u8>,
    at: usize,
}

impl<R: Read> Cur2Product<R> {
    /// The next row, rewritten, into `out`; false at the end.
    fn refill(&mut self) -> std::io::Result<bool> {
        if !self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(std::io::Error::other)?
        {
            return Ok(false);
        }
        let members: Option<serde_json::Map<String, serde_json::Value>> = self
            .record
            .get(self.product)
            .filter(|cell| !cell.is_empty())
            .and_then(|cell| serde_json::from_slice(cell).ok());
        let mut row = self.record.clone();
        for member in &self.members {
            let value = members
                .as_ref()
                .and_then(|m| m.get(*member))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            row.push_field(value.as_bytes());
        }
        self.out.clear();
        self.at = 0;
        let mut writer = csv::Writer::from_writer(&mut self.out);
        writer
            .write_byte_record(&row)
            .map_err(std::io::Error::other)?;
        writer.flush()?;
        Ok(true)
    }
}

impl<R: Read> Read for Cur2Product<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.out.len() && !self.refill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn io_error(file: &str, e: &std::io::Error) -> ImportError {
    ImportError::Csv {
        file: file.to_owned(),
        line: 1,
        message: format!("cannot read: {e}"),
    }
}

fn header_error(file: &str, message: String) -> ImportError {
    ImportError::Header {
        file: file.to_owned(),
        message,
    }
}

/// Writes a Parquet bill as CSV (a header of its top-level column names, then one line per
/// row) and returns the rows written. Exact: a `DECIMAL` is written from its digits, a
/// `DOUBLE` by the shortest text that reads back as it (the text the exporter's number is),
/// timestamps as RFC 3339 UTC, a map (tags) as a JSON object, a null as an empty cell.
pub fn parquet_to_csv<R: ChunkReader + 'static, W: Write>(
    input: R,
    out: W,
    file: &str,
) -> Result<u64, ImportError> {
    let failed = |message: String| ImportError::Csv {
        file: file.to_owned(),
        line: 0,
        message: format!("not a readable Parquet file: {message}"),
    };
    let reader = SerializedFileReader::new(input).map_err(|e| failed(e.to_string()))?;
    let columns: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    if columns.len() > crate::limits::MAX_COLUMNS {
        return Err(header_error(
            file,
            format!(
                "{} columns (at most {})",
                columns.len(),
                crate::limits::MAX_COLUMNS
            ),
        ));
    }
    let mut writer = csv::Writer::from_writer(out);
    let write_failed = |e: csv::Error| failed(format!("cannot write its CSV: {e}"));
    writer.write_record(&columns).map_err(write_failed)?;
    let mut rows = 0u64;
    let mut cells: Vec<String> = Vec::with_capacity(columns.len());
    for row in reader
        .get_row_iter(None)
        .map_err(|e| failed(e.to_string()))?
    {
        let row = row.map_err(|e| failed(format!("row {}: {e}", rows + 1)))?;
        cells.clear();
        for (_, field) in row.get_column_iter() {
            cells.push(cell_text(field).map_err(|m| failed(format!("row {}: {m}", rows + 1)))?);
        }
        writer.write_record(&cells).map_err(write_failed)?;
        rows += 1;
    }
    writer
        .flush()
        .map_err(|e| failed(format!("cannot write its CSV: {e}")))?;
    Ok(rows)
}

/// One Parquet value as the CSV cell a bill would have.
fn cell_text(field: &Field) -> Result<String, String> {
    use chrono::{DateTime, Duration, NaiveDate};
    Ok(match field {
        Field::Null => String::new(),
        Field::Bool(v) => v.to_string(),
        Field::Byte(v) => v.to_string(),
        Field::Short(v) => v.to_string(),
        Field::Int(v) => v.to_string(),
        Field::Long(v) => v.to_string(),
        Field::UByte(v) => v.to_string(),
        Field::UShort(v) => v.to_string(),
        Field::UInt(v) => v.to_string(),
        Field::ULong(v) => v.to_string(),
        Field::Float16(v) => v.to_string(),
        // Rust prints the shortest text that reads back as the same number.
        Field::Float(v) => finite(f64::from(*v))?,
        Field::Double(v) => finite(*v)?,
        Field::Decimal(d) => decimal_text(d.data(), d.scale())?,
        Field::Str(s) => s.clone(),
        Field::Bytes(b) => String::from_utf8_lossy(b.data()).into_owned(),
        Field::Date(days) => (NaiveDate::default() + Duration::days(i64::from(*days)))
            .format("%Y-%m-%d")
            .to_string(),
        Field::TimestampMillis(ms) => DateTime::from_timestamp_millis(*ms)
            .ok_or_else(|| format!("timestamp {ms} ms is out of range"))?
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        Field::TimestampMicros(us) => DateTime::from_timestamp_micros(*us)
            .ok_or_else(|| format!("timestamp {us} µs is out of range"))?
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string(),
        Field::MapInternal(map) => {
            let mut object = serde_json::Map::new();
            for (k, v) in map.entries() {
                object.insert(plain(k)?, serde_json::Value::String(plain(v)?));
            }
            serde_json::Value::Object(object).to_string()
        }
        other => other.to_string(),
    })
}

/// A map key or value as text (a string without the quotes `Display` adds).
fn plain(field: &Field) -> Result<String, String> {
    match field {
        Field::Str(s) => Ok(s.clone()),
        other => cell_text(other),
    }
}

fn finite(v: f64) -> Result<String, String> {
    if v.is_finite() {
        Ok(format!("{v}"))
    } else {
        Err(format!("{v} is not a number"))
    }
}

/// A Parquet `DECIMAL`'s big-endian two's-complement digits at `scale`, as decimal text.
fn decimal_text(bytes: &[u8], scale: i32) -> Result<String, String> {
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(format!(
            "a DECIMAL of {} bytes (at most 16 are read)",
            bytes.len()
        ));
    }
    let negative = bytes[0] & 0x80 != 0;
    let mut value: i128 = if negative { -1 } else { 0 };
    for b in bytes {
        value = (value << 8) | i128::from(*b);
    }
    let digits = value.unsigned_abs().to_string();
    let scale = usize::try_from(scale).map_err(|_| format!("a DECIMAL scale of {scale}"))?;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let sign = if negative { "-" } else { "" };
    Ok(if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(bytes: Vec<u8>) -> (BillFormat, String) {
        let mut b = open_bill(Cursor::new(bytes), "t.csv").unwrap();
        let mut text = String::new();
        b.csv.read_to_string(&mut text).unwrap();
        (b.format, text)
    }

    #[test]
    fn formats_are_told_by_their_header_and_gzip_by_its_magic() {
        let focus = "BilledCost,BillingCurrency\n1.5,USD\n";
        assert_eq!(opened(focus.into()), (BillFormat::Focus, focus.to_owned()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(focus.as_bytes()).unwrap();
        assert_eq!(
            opened(gz.finish().unwrap()),
            (BillFormat::Focus, focus.to_owned())
        );
        let cur2 = "line_item_unblended_cost,resource_tags,other\n2,\"{\"\"a\"\":\"\"b\"\"}\",x\n";
        let (format, text) = opened(cur2.into());
        assert_eq!(format, BillFormat::Cur);
        assert!(text.starts_with("lineItem/UnblendedCost,resourceTags,other\n2,"));
        let err = open_bill(Cursor::new(b"a,b\n1,2\n".to_vec()), "x.csv").unwrap_err();
        assert!(
            err.to_string()
                .contains("not a FOCUS, CUR or Azure cost details bill"),
            "{err}"
        );
        let azure = "date,costInBillingCurrency,billingCurrency\n";
        assert_eq!(
            opened(azure.into()),
            (BillFormat::AzureCost, azure.to_owned())
        );
        assert_eq!(
            azure_names(&["date".into(), "billingCurrency".into(), "x".into()]),
            ["Date", "BillingCurrencyCode", "x"]
        );
        let err = open_bill(Cursor::new(Vec::new()), "x.csv").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let err = open_bill(Cursor::new(vec![0x1f, 0x8b, 1, 2, 3]), "x.csv").unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[test]
    fn decimals_keep_every_digit() {
        assert_eq!(decimal_text(&[0x01, 0x00], 2).unwrap(), "2.56");
        assert_eq!(decimal_text(&[0xff, 0xfe], 3).unwrap(), "-0.002");
        assert_eq!(decimal_text(&[0x05], 0).unwrap(), "5");
        let big = i128::MAX.to_be_bytes();
        assert_eq!(
            decimal_text(&big, 10).unwrap(),
            "17014118346046923173168730371.5884105727"
        );
        assert!(decimal_text(&[0; 17], 0).is_err());
        assert_eq!(finite(9.6e-6).unwrap(), "0.0000096");
        assert!(finite(f64::NAN).is_err());
    }
}
