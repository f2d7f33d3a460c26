//! Text cells bound for spreadsheets: a cell a spreadsheet would run as a formula is
//! neutralised, reversibly.

use std::borrow::Cow;

/// The characters with which a spreadsheet starts a formula (or, tab and carriage return,
/// hides one).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `cell` as written to a CSV a spreadsheet may open: a text that starts with `=`, `+`, `-`,
/// `@`, a tab or a carriage return — after any number of `'` — gets one more `'` in front, so
/// a spreadsheet shows it as text instead of running it (`=cmd|' /C calc'!A0` →
/// `'=cmd|' /C calc'!A0`). Numbers (`-12.5`) are left as they are. Reversible: removing one
/// `'` from a cell that starts with `'` followed by such a text gives the value back
/// ([`formula_unsafe`]).
///
/// ```
/// use cloudbill_core::formula_safe;
/// assert_eq!(formula_safe("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
/// assert_eq!(formula_safe("-12.5"), "-12.5");
/// assert_eq!(formula_safe("AmazonEC2"), "AmazonEC2");
/// assert_eq!(formula_safe("'=x"), "''=x");
/// ```
pub fn formula_safe(cell: &str) -> Cow<'_, str> {
    let rest = cell.trim_start_matches('\'');
    if rest.starts_with(FORMULA_START) && crate::parse_decimal(cell).is_err() {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The value [`formula_safe`] was given: one leading `'` removed from a cell that starts with
/// `'`s followed by a formula's first character.
///
/// ```
/// use cloudbill_core::{formula_safe, formula_unsafe};
/// for v in ["=1+1", "'=1+1", "''@x", "-5", "'plain", "@SUM(A1)"] {
///     assert_eq!(formula_unsafe(&formula_safe(v)), v);
/// }
/// ```
pub fn formula_unsafe(cell: &str) -> Cow<'_, str> {
    match cell.strip_prefix('\'') {
        Some(inner) if inner.trim_start_matches('\'').starts_with(FORMULA_START) => {
            Cow::Borrowed(inner)
        }
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::{formula_safe, formula_unsafe};

    #[test]
    fn every_formula_start_is_neutralised_and_given_back() {
        for v in [
            "=cmd|' /C calc'!A0",
            "+A1",
            "-A1",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "'=1",
            "''-x",
            "-",
            "+",
        ] {
            let safe = formula_safe(v);
            assert!(safe.starts_with('\''), "{v:?}");
            assert_eq!(formula_unsafe(&safe), v);
        }
        for v in [
            "-12.5",
            "+3",
            "0",
            "AmazonEC2",
            "'quoted",
            "",
            "a=b",
            "1e-5",
        ] {
            assert_eq!(formula_safe(v), v, "{v:?}");
            assert_eq!(formula_unsafe(v), v, "{v:?}");
        }
    }
}
