//! The limits a bill must stay within, checked while it is read so that memory stays bounded
//! whatever the input: a 1 MB gzip of 1 GB of zeros, a 200 MB header line, a 100,000-character
//! value. Each has a clear error naming the file and line.

use std::io::Read;

/// The longest CSV record (one row, or the header, quoted line breaks included), in bytes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// The most bytes a bill may hold once decompressed (256 GiB).
pub const MAX_BILL_BYTES: u64 = 256 << 30;
/// The most columns a header may have.
pub const MAX_COLUMNS: usize = 4096;
/// The longest text value of a dimension or tag (key or value), in characters.
pub const MAX_VALUE_CHARS: usize = 4096;

/// A limit a bill went past, carried inside the `io::Error` the reader returns.
#[derive(Debug)]
pub(crate) struct LimitExceeded {
    /// The 1-based line where the offending record starts.
    pub(crate) line: u64,
    /// What was exceeded.
    pub(crate) message: String,
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LimitExceeded {}

/// Reads `inner` and fails as soon as a record grows past [`MAX_RECORD_BYTES`] or the whole
/// past [`MAX_BILL_BYTES`] (quotes are followed, so a quoted line break does not end a record).
pub(crate) struct Bounded<R> {
    inner: R,
    in_quotes: bool,
    record_bytes: usize,
    total: u64,
    /// Record boundaries seen (the record being read starts on line `line`).
    line: u64,
    max_record: usize,
}

impl<R> Bounded<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self::with_max_record(inner, MAX_RECORD_BYTES)
    }

    pub(crate) fn with_max_record(inner: R, max_record: usize) -> Self {
        Self {
            inner,
            in_quotes: false,
            record_bytes: 0,
            total: 0,
            line: 1,
            max_record,
        }
    }

    fn exceeded(&self, message: String) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            LimitExceeded {
                line: self.line,
                message,
            },
        )
    }

    /// Accounts for `chunk` (quotes and record ends found with memchr, so this costs little
    /// on real bills).
    fn scan(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.total += chunk.len() as u64;
        if self.total > MAX_BILL_BYTES {
            return Err(self.exceeded(format!(
                "the bill is larger than {MAX_BILL_BYTES} bytes once decompressed"
            )));
        }
        let mut at = 0;
        while at < chunk.len() {
            let rest = &chunk[at..];
            let next = if self.in_quotes {
                memchr::memchr(b'"', rest)
            } else {
                memchr::memchr2(b'"', b'\n', rest)
            };
            let Some(i) = next else {
                self.record_bytes += rest.len();
                break;
            };
            self.record_bytes += i;
            if self.record_bytes > self.max_record {
                break;
            }
            if rest[i] == b'"' {
                self.in_quotes = !self.in_quotes;
                self.record_bytes += 1;
            } else {
                self.record_bytes = 0;
                self.line += 1;
            }
            at += i + 1;
        }
        if self.record_bytes > self.max_record {
            return Err(self.exceeded(format!(
                "a record is longer than {} bytes (a missing line break or an unbalanced quote?)",
                self.max_record
            )));
        }
        Ok(())
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n])?;
        Ok(n)
    }
}

/// The limit error inside a CSV reader's error, if that is what stopped it.
pub(crate) fn limit_of(e: &csv::Error) -> Option<&LimitExceeded> {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.get_ref()?.downcast_ref::<LimitExceeded>(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], max: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        Bounded::with_max_record(input, max)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn records_are_bounded_and_quoted_line_breaks_do_not_end_them() {
        assert!(read_all(b"a,b\n1,2\n", 4).is_ok());
        let err = read_all(b"a,b\n123456\n", 4).unwrap_err();
        assert!(err.contains("longer than 4 bytes"), "{err}");
        // A quoted line break keeps the record going.
        assert!(read_all(b"a,\"x\ny\nz\"\n", 4).is_err());
        assert!(read_all(b"a,\"x\ny\nz\"\n", 16).is_ok());
        // Doubled quotes inside a quoted field toggle twice: the record still ends.
        assert!(read_all(b"\"a\"\"b\"\n\"c\"\n", 8).is_ok());
    }

    #[test]
    fn the_line_of_the_long_record_is_named() {
        let mut r = Bounded::with_max_record(&b"h\n1\n22222222\n"[..], 4);
        let err = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
        let limit = err
            .get_ref()
            .unwrap()
            .downcast_ref::<LimitExceeded>()
            .unwrap();
        assert_eq!(limit.line, 3);
    }
}
