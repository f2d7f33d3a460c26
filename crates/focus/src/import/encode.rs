//! The import's path: a CSV reader thread and one mapper per core encoding rows straight into
//! columnar partitions.

use std::collections::BTreeMap;
use std::io::Read;

use chrono::{Datelike, NaiveDate};
use cloudbill_columnar::{EncodedPartition, PartitionEncoder};
use cloudbill_core::Tags;

use super::fields::{context, map_fields, RowContext, Scratch};
use super::layout::{check_width, csv_error, open_csv};
use super::rows::Rows;
use super::{BillFormat, ImportOptions, ImportedBill};
use crate::{ImportError, RowError};

/// Rows per batch handed from the CSV reader thread to a mapper, at most.
pub(super) const BATCH: usize = 1024;
/// Bytes of CSV per batch, at most (one record more): wide rows (sixty `x_` columns of 4,096
/// characters are 240 KB a row) make small batches, so the batches in flight — two queued per
/// mapper, one being mapped, one being read — hold megabytes, not gigabytes.
pub(super) const BATCH_BYTES: usize = 4 << 20;
/// A record buffer that held more than this is not kept for the next batch (a buffer keeps the
/// capacity of the longest record it ever held).
const KEEP_RECORD_BYTES: usize = 16 << 10;

/// What one mapper thread of [`encode_bill`] saw.
#[derive(Default)]
pub(super) struct MapperOutcome {
    pub(super) rows: Rows,
    /// The bad row that stopped this mapper (not with `skip_invalid`).
    pub(super) bad: Option<RowError>,
    /// Stopped early: a bad row, or the receiver went away.
    pub(super) stopped: bool,
}

/// Maps and encodes the batches it receives; finished partitions go to `out`.
#[allow(clippy::too_many_arguments)] // One worker's wiring, passed once.
pub(super) fn mapper(
    ctx: &RowContext<'_>,
    width: usize,
    options: ImportOptions,
    spill_bytes: usize,
    batches: std::sync::mpsc::Receiver<Vec<csv::StringRecord>>,
    out: &std::sync::mpsc::SyncSender<EncodedPartition>,
    recycle: &std::sync::mpsc::Sender<Vec<csv::StringRecord>>,
    stop: &std::sync::atomic::AtomicBool,
) -> MapperOutcome {
    use std::sync::atomic::Ordering;
    let mut seen = MapperOutcome {
        rows: Rows::new(options),
        ..MapperOutcome::default()
    };
    let mut encoders: BTreeMap<NaiveDate, PartitionEncoder> = BTreeMap::new();
    let mut tags = Tags::new();
    let flush = |encoders: &mut BTreeMap<NaiveDate, PartitionEncoder>| {
        std::mem::take(encoders)
            .into_values()
            .all(|e| out.send(e.finish()).is_ok())
    };
    for batch in batches {
        if seen.stopped {
            continue; // drain, so the reader never blocks on this mapper
        }
        let mut scratch = Scratch::default();
        for record in &batch {
            let line = record.position().map_or(0, csv::Position::line);
            let mapped = check_width(record, width, line)
                .and_then(|()| map_fields(ctx, record, line, &mut tags, &mut scratch));
            match seen.rows.outcome(mapped) {
                Ok(Some(f)) => {
                    let date = f.date;
                    let month = date.with_day(1).unwrap_or(date);
                    encoders
                        .entry(month)
                        .or_insert_with(|| PartitionEncoder::new(month))
                        .push_fields(&f);
                    seen.rows.saw(date);
                }
                Ok(None) => {}
                Err(error) => {
                    seen.bad = Some(error);
                    seen.stopped = true;
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        let mut batch = batch;
        for record in &mut batch {
            if record.as_byte_record().as_slice().len() > KEEP_RECORD_BYTES {
                *record = csv::StringRecord::new();
            }
        }
        // The reader may be gone (it stopped); the batch is then dropped here.
        let _ = recycle.send(batch);
        if !seen.stopped
            && encoders
                .values()
                .map(PartitionEncoder::memory)
                .sum::<usize>()
                > spill_bytes
            && !flush(&mut encoders)
        {
            seen.stopped = true;
        }
    }
    if !seen.stopped {
        flush(&mut encoders);
    }
    seen
}

/// Streams a bill straight into columnar partitions (cloudbill-core's codec), for a store
/// that takes them ready-encoded. One thread splits the CSV into records (reusing their
/// buffers) and deals batches round-robin to one mapper per core, which map each row's cells
/// — no `CostRecord`, no per-row allocation — into their own encoder per month. `emit` (on
/// the calling thread) receives every finished partition; when a mapper's encoders hold more
/// than `spill_bytes` it finishes them early (a month then spans several partitions, which
/// come in no particular order), so memory stays bounded whatever the file's size. `emit`
/// returning `false` stops the read (the receiver is gone). Errors and summary as
/// [`for_each_record`](super::for_each_record): the bad row reported is the first in the file; skipped rows are
/// reported in line order.
pub fn encode_bill<R: Read + Send>(
    source: R,
    file: &str,
    format: BillFormat,
    options: ImportOptions,
    spill_bytes: usize,
    mut emit: impl FnMut(EncodedPartition) -> bool,
) -> Result<ImportedBill, ImportError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    let (mut reader, columns, width) = open_csv(source, file, format)?;
    let ctx = context(format, &columns, options);
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, 4);
    let stop = AtomicBool::new(false);
    let (out_tx, out_rx) = mpsc::sync_channel::<EncodedPartition>(workers * 2);
    let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<csv::StringRecord>>();
    let (read, outcomes) = std::thread::scope(|scope| {
        let mut to_workers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = mpsc::sync_channel::<Vec<csv::StringRecord>>(2);
            to_workers.push(tx);
            let (ctx, out, recycle, stop) = (&ctx, out_tx.clone(), recycle_tx.clone(), &stop);
            handles.push(scope.spawn(move || {
                #[cfg(test)]
                tests::fail_on_purpose(file);
                mapper(ctx, width, options, spill_bytes, rx, &out, &recycle, stop)
            }));
        }
        drop((out_tx, recycle_tx));
        let stop = &stop;
        let reader_thread = scope.spawn(move || -> Result<u64, ImportError> {
            let mut rows = 0u64;
            for turn in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // No batch back yet (or none will come): a new one.
                let mut batch = recycle_rx.try_recv().unwrap_or_default();
                batch.resize_with(BATCH, csv::StringRecord::new);
                let mut filled = 0;
                let mut bytes = 0;
                let mut more = true;
                while filled < BATCH && bytes < BATCH_BYTES {
                    match reader.read_record(&mut batch[filled]) {
                        Ok(true) => {
                            bytes += batch[filled].as_byte_record().as_slice().len();
                            filled += 1;
                        }
                        Ok(false) => {
                            more = false;
                            break;
                        }
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            return Err(csv_error(file, &e));
                        }
                    }
                }
                rows += filled as u64;
                let done = !more;
                batch.truncate(filled);
                if (!batch.is_empty() && to_workers[turn % workers].send(batch).is_err()) || done {
                    break;
                }
            }
            Ok(rows)
        });
        for partition in out_rx {
            if !stop.load(Ordering::Relaxed) && !emit(partition) {
                stop.store(true, Ordering::Relaxed);
            }
        }
        // A thread that panicked fails the whole import: its rows are not in the stream, so
        // a success would be a bill with rows missing.
        let failed = |what: &str, panic: Box<dyn std::any::Any + Send>| ImportError::Worker {
            file: file.to_owned(),
            message: format!("{what} failed: {}", panic_message(panic.as_ref())),
        };
        let mut outcomes = Vec::with_capacity(handles.len());
        let mut worker_failure = None;
        for h in handles {
            match h.join() {
                Ok(outcome) => outcomes.push(outcome),
                Err(panic) => worker_failure = Some(failed("an encoder thread", panic)),
            }
        }
        let read = match (reader_thread.join(), worker_failure) {
            (_, Some(failure)) => Err(failure),
            (Ok(read), None) => read,
            (Err(panic), None) => Err(failed("the reader thread", panic)),
        };
        (read, outcomes)
    });
    merge(file, options, read, outcomes)
}

/// The text of a panic's payload (`panic!` with a message or a format string).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
}

/// The summary of [`encode_bill`] from what the reader and the mappers saw: the first bad
/// row of the file wins (a mapper's, or the reader's broken CSV when that comes first).
pub(super) fn merge(
    file: &str,
    options: ImportOptions,
    read: Result<u64, ImportError>,
    outcomes: Vec<MapperOutcome>,
) -> Result<ImportedBill, ImportError> {
    let mut rows = Rows::new(options);
    let mut first_bad: Option<RowError> = None;
    let mut stopped = false;
    for o in outcomes {
        rows.absorb(o.rows);
        stopped |= o.stopped;
        if let Some(bad) = o.bad {
            if first_bad.as_ref().is_none_or(|b| bad.line < b.line) {
                first_bad = Some(bad);
            }
        }
    }
    let row_error = |error| ImportError::Row {
        file: file.to_owned(),
        error,
    };
    match (read, first_bad) {
        (Err(ImportError::Csv { line, .. }), Some(error)) if error.line < line => {
            return Err(row_error(error))
        }
        (Err(e), _) => return Err(e),
        (Ok(_), Some(error)) => return Err(row_error(error)),
        (Ok(count), None) => rows.bill.rows = count,
    }
    if stopped {
        // The receiver went away: the caller reports why.
        return Ok(rows.bill);
    }
    rows.finish(file)
}

#[cfg(test)]
pub(super) mod tests {
    use std::fmt::Write as _;

    use super::*;

    /// A file of this name makes each encoder thread panic as it starts.
    const PANICKING_FILE: &str = "panic-in-a-worker.csv";

    pub(in crate::import) fn fail_on_purpose(file: &str) {
        assert!(file != PANICKING_FILE, "a mapper failed (injected)");
    }

    /// A panicked encoder fails the import (it used to join as an empty result, and the
    /// import reported success with that thread's rows missing).
    #[test]
    fn a_panicking_worker_fails_the_import() {
        let mut csv = String::from(
            "BilledCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ServiceName,RegionId,SubAccountId\n",
        );
        for day in 1..=27 {
            writeln!(
                csv,
                "1.5,USD,2025-02-{day:02}T00:00:00Z,2025-02-{:02}T00:00:00Z,Usage,AmazonEC2,us-east-1,111111111111",
                day + 1
            )
            .unwrap();
        }
        let mut emitted = 0;
        let run = |file: &str, emitted: &mut usize| {
            encode_bill(
                csv.as_bytes(),
                file,
                BillFormat::Focus,
                ImportOptions::default(),
                1 << 20,
                |_| {
                    *emitted += 1;
                    true
                },
            )
        };
        let ok = run("bill.csv", &mut emitted).expect("the same file imports");
        assert_eq!(ok.rows, 27);
        let err = run(PANICKING_FILE, &mut emitted).unwrap_err();
        assert!(matches!(err, ImportError::Worker { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("an encoder thread failed: a mapper failed (injected)")
                && text.contains("nothing was written"),
            "{text}"
        );
    }
}
