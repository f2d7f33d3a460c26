//! Whole-product scenarios live in `tests/`: the library embedded on SQLite and PostgreSQL, the
//! `cloudbill` binary and the server on one database, the simulator behind them, and the crate
//! map of `docs/ARCHITECTURE.md` checked against `cargo tree`. This library is empty.
