//! `import focus|cur` and `export focus`.

use std::io::{BufReader, Read, Write};
use std::path::Path;

use cloudbill_core::DateRange;
use cloudbill_service::{BillFormat, Billing, FocusFormat, ImportOptions, Principal, ServiceError};
use serde_json::json;

use crate::args::{ExportFormat, Format, ImportFormat};
use crate::render::{self, Grid};
use crate::CliError;

/// Opens a bill, transparently gunzipping it, with a progress bar (bytes read / total) on a TTY
/// labelled `what`.
fn open_bill(
    file: std::fs::File,
    path: &Path,
    what: &str,
) -> std::io::Result<Box<dyn Read + Send>> {
    let total = file.metadata().map_or(0, |m| m.len());
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{what} {}", path.display()));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut reader = BufReader::with_capacity(1 << 16, bar.wrap_read(file));
    let gz = {
        use std::io::BufRead;
        reader.fill_buf()?.starts_with(&[0x1f, 0x8b])
    };
    Ok(if gz {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    })
}

pub(crate) async fn import(
    b: &Billing,
    format: ImportFormat,
    out_format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let (kind, args) = match format {
        ImportFormat::Focus(a) => (BillFormat::Focus, a),
        ImportFormat::Cur(a) => (BillFormat::Cur, a),
    };
    let name = args.file.display().to_string();
    // Opened once, here (a FIFO or a process substitution can be opened only once), failing
    // early with the file's own error; the import reads this handle.
    let file = std::fs::File::open(&args.file)
        .map_err(|e| CliError::Failure(format!("cannot open {name}: {e}")))?;
    let opened = std::sync::Mutex::new(Some(file));
    let path = args.file.clone();
    let source: cloudbill_service::BillSource = std::sync::Arc::new(move || {
        let file = opened
            .lock()
            .map_err(|_| std::io::Error::other("the bill's handle was poisoned"))?
            .take()
            .ok_or_else(|| std::io::Error::other("the bill was already read"))?;
        open_bill(file, &path, "importing")
    });
    let options = ImportOptions {
        skip_invalid: args.skip_invalid,
        window: args.window,
    };
    let report = b
        .import(
            &Principal::Admin,
            &args.account,
            kind,
            source,
            &name,
            options,
        )
        .await?;
    let range = report
        .range
        .map(|r| format!("{} .. {}", r.start(), r.end()))
        .unwrap_or_default();
    let json = json!({
        "account": report.account, "file": name, "job": report.job.to_string(),
        "start": report.range.map(|r| r.start().to_string()), "end": report.range.map(|r| r.end().to_string()),
        "days_replaced": report.days,
        "rows": report.rows, "written": report.written, "skipped": report.skipped,
        "changed_days": report.changed_days,
        "skipped_rows": report.first_errors.iter().map(|e| json!({"line": e.line, "column": e.column, "error": e.message})).collect::<Vec<_>>(),
    });
    let mut g = Grid::new(
        &[
            "account",
            "file",
            "range",
            "days replaced",
            "rows",
            "written",
            "skipped",
            "changed days",
        ],
        &[
            "days replaced",
            "rows",
            "written",
            "skipped",
            "changed days",
        ],
        json,
    );
    g.row(vec![
        report.account.clone(),
        name,
        range,
        report.days.to_string(),
        report.rows.to_string(),
        report.written.to_string(),
        report.skipped.to_string(),
        report.changed_days.to_string(),
    ]);
    render::print(out, out_format, &g)?;
    if out_format == Format::Table && !report.first_errors.is_empty() {
        let mut e = Grid::new(
            &["skipped line", "column", "why"],
            &["skipped line"],
            serde_json::Value::Null,
        );
        for err in &report.first_errors {
            e.row(vec![
                err.line.to_string(),
                err.column.clone(),
                err.message.clone(),
            ]);
        }
        render::print(out, Format::Table, &e)?;
    }
    Ok(())
}

pub(crate) async fn export(
    b: &Billing,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let ExportFormat::Focus(args) = format;
    let range = DateRange::new(args.start, args.end).map_err(|e| CliError::Usage(e.to_string()))?;
    if args.file.as_os_str() == "-" {
        // Spooled through an unnamed temporary file, then copied to stdout: the export is
        // written batch by batch from a worker that needs an owned writer, and memory stays
        // bounded whatever its size.
        let spool_failed =
            |e: std::io::Error| CliError::Failure(format!("cannot spool the export: {e}"));
        let mut spool = tempfile::tempfile().map_err(spool_failed)?;
        b.export_focus(
            &Principal::Admin,
            range,
            &args.project,
            FocusFormat::Csv,
            std::io::BufWriter::new(spool.try_clone().map_err(spool_failed)?),
        )
        .await?;
        std::io::Seek::rewind(&mut spool).map_err(spool_failed)?;
        std::io::copy(&mut spool, out).map_err(spool_failed)?;
        return Ok(());
    }
    let fail = |e: &dyn std::fmt::Display| {
        CliError::Failure(format!("cannot write {}: {e}", args.file.display()))
    };
    // Write beside the target and rename, so a failed export leaves no partial file (the
    // temporary one is removed on any failure).
    let mut tmp_name = args.file.clone().into_os_string();
    tmp_name.push(".partial");
    let tmp = std::path::PathBuf::from(tmp_name);
    let file = std::fs::File::create(&tmp).map_err(|e| fail(&e))?;
    let written = match b
        .export_focus(
            &Principal::Admin,
            range,
            &args.project,
            FocusFormat::for_file_name(&args.file.to_string_lossy()),
            std::io::BufWriter::new(file),
        )
        .await
    {
        Ok(n) => std::fs::rename(&tmp, &args.file)
            .map(|()| n)
            .map_err(|e| fail(&e)),
        Err(ServiceError::Write(e)) => Err(fail(&e)),
        Err(e) => Err(e.into()),
    };
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    eprintln!("wrote {} records to {}", written?, args.file.display());
    Ok(())
}
