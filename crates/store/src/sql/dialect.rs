//! What differs between the SQL databases, as one trait: [`Dialect`].
//!
//! The store's SQL is written once, as generic code over `D: Dialect`. sqlx's own bounds for
//! generic code (`for<'c> &'c mut D::Connection: Executor<'c>`, `T: Encode<'q, D> + Type<D>` per
//! bound type, …) are where-clauses Rust does not carry from a trait to its users, so they would
//! repeat on every function. `Dialect` states them once as supertraits, which Rust does carry:
//! [`Bind`] and [`Get`] for each value type the store binds or reads, plus the four ways to run
//! a statement. Its two implementations ([`sqlx::Sqlite`], [`sqlx::Postgres`]) are one small
//! macro that forwards to sqlx.
//!
//! The trait is public only because [`SqlStore`](super::SqlStore)'s impls name it; it lives in
//! a private module, so no other crate can name or implement it.
//!
//! Generic code writes `sqlx::query::<D>(SQL).arg(x).all(&pool)` ([`Arg`], [`Run`]) and
//! `row.col("name")` ([`Col`]) where concrete code would write `.bind(x).fetch_all(&pool)` and
//! `row.try_get("name")`.

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use sqlx::query::Query;
use sqlx::{Database, Pool, Transaction};
use uuid::Uuid;

/// The arguments type of a query on `D`.
pub(crate) type Args<'q, D> = <D as Database>::Arguments<'q>;

/// A statement on `D` with its bound values.
pub(crate) type Stmt<'q, D> = Query<'q, D, Args<'q, D>>;

/// `D` can bind a `T` into a statement.
pub trait Bind<'q, T>: Database {
    /// `q` with `v` bound to its next placeholder.
    fn bind(q: Stmt<'q, Self>, v: T) -> Stmt<'q, Self>;
}

/// `D` can read a `T` out of a row.
pub trait Get<'r, T>: Database {
    /// Column `col` of `row` as a `T`.
    fn get(row: &'r Self::Row, col: &str) -> Result<T, sqlx::Error>;
}

/// Where a statement runs: the pool (any connection) or one connection (a transaction's).
pub enum Exec<'c, D: Database> {
    /// Any connection of the pool.
    Pool(&'c Pool<D>),
    /// This connection.
    Conn(&'c mut D::Connection),
}

impl<'c, D: Database> From<&'c Pool<D>> for Exec<'c, D> {
    fn from(pool: &'c Pool<D>) -> Self {
        Exec::Pool(pool)
    }
}

impl<'c, D: Database> From<&'c mut D::Connection> for Exec<'c, D> {
    fn from(conn: &'c mut D::Connection) -> Self {
        Exec::Conn(conn)
    }
}

/// What a statement that returns no rows did.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    rows: u64,
}

impl Done {
    /// How many rows it inserted, updated or deleted.
    pub fn rows_affected(self) -> u64 {
        self.rows
    }
}

/// An SQL database the store runs on. Every value type the store's SQL binds or reads is a
/// supertrait here; a new column type is one more line in this list.
pub trait Dialect:
    Database
    + for<'q> Bind<'q, Uuid>
    + for<'q> Bind<'q, Option<Uuid>>
    + for<'q> Bind<'q, &'q str>
    + for<'q> Bind<'q, Option<&'q str>>
    + for<'q> Bind<'q, String>
    + for<'q> Bind<'q, Option<String>>
    + for<'q> Bind<'q, Vec<u8>>
    + for<'q> Bind<'q, Option<Vec<u8>>>
    + for<'q> Bind<'q, i64>
    + for<'q> Bind<'q, Option<i64>>
    + for<'q> Bind<'q, bool>
    + for<'q> Bind<'q, NaiveDate>
    + for<'q> Bind<'q, Option<NaiveDate>>
    + for<'q> Bind<'q, DateTime<Utc>>
    + for<'q> Bind<'q, Option<DateTime<Utc>>>
    + for<'r> Get<'r, Uuid>
    + for<'r> Get<'r, Option<Uuid>>
    + for<'r> Get<'r, String>
    + for<'r> Get<'r, Option<String>>
    + for<'r> Get<'r, &'r [u8]>
    + for<'r> Get<'r, Vec<u8>>
    + for<'r> Get<'r, Option<Vec<u8>>>
    + for<'r> Get<'r, i64>
    + for<'r> Get<'r, Option<i64>>
    + for<'r> Get<'r, bool>
    + for<'r> Get<'r, NaiveDate>
    + for<'r> Get<'r, Option<NaiveDate>>
    + for<'r> Get<'r, DateTime<Utc>>
    + for<'r> Get<'r, Option<DateTime<Utc>>>
{
    /// Runs `q`, returning what it did.
    fn execute<'e, 'q: 'e>(
        q: Stmt<'q, Self>,
        on: Exec<'e, Self>,
    ) -> BoxFuture<'e, Result<Done, sqlx::Error>>;

    /// Runs `q`, returning all its rows.
    fn fetch_all<'e, 'q: 'e>(
        q: Stmt<'q, Self>,
        on: Exec<'e, Self>,
    ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>>;

    /// Runs `q`, returning its first row if it has one.
    fn fetch_optional<'e, 'q: 'e>(
        q: Stmt<'q, Self>,
        on: Exec<'e, Self>,
    ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>>;

    /// Runs `q`, returning its rows as they arrive.
    fn fetch<'e, 'q: 'e>(
        q: Stmt<'q, Self>,
        on: Exec<'e, Self>,
    ) -> BoxStream<'e, Result<Self::Row, sqlx::Error>>;

    /// Whether a commit that moves a data version tells other sessions (PostgreSQL's
    /// `NOTIFY`); without it, they poll the version.
    const NOTIFIES: bool;

    /// The feed of domains whose data version moved (see [`crate::CostStore::change_feed`]).
    fn change_feed(
        pool: &Pool<Self>,
    ) -> BoxFuture<'_, Result<Option<crate::ChangeFeed>, sqlx::Error>>;

    /// A transaction that will write. SQLite takes the write lock up front (`BEGIN
    /// IMMEDIATE`), so concurrent writers wait (busy timeout) instead of failing when a read
    /// would upgrade to a write.
    fn write_tx(
        pool: &Pool<Self>,
    ) -> BoxFuture<'_, Result<Transaction<'static, Self>, sqlx::Error>>;
}

/// Forwards [`Dialect`], [`Bind`] and [`Get`] to sqlx for one database type.
macro_rules! dialect {
    ($db:ty, $notifies:expr, $feed:path, |$pool:ident| $begin:expr) => {
        impl<'q, T> Bind<'q, T> for $db
        where
            T: 'q + sqlx::Encode<'q, $db> + sqlx::Type<$db>,
        {
            fn bind(q: Stmt<'q, Self>, v: T) -> Stmt<'q, Self> {
                q.bind(v)
            }
        }

        impl<'r, T> Get<'r, T> for $db
        where
            T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
        {
            fn get(row: &'r Self::Row, col: &str) -> Result<T, sqlx::Error> {
                sqlx::Row::try_get(row, col)
            }
        }

        impl Dialect for $db {
            const NOTIFIES: bool = $notifies;

            fn change_feed(
                pool: &Pool<Self>,
            ) -> BoxFuture<'_, Result<Option<crate::ChangeFeed>, sqlx::Error>> {
                Box::pin($feed(pool))
            }

            fn execute<'e, 'q: 'e>(
                q: Stmt<'q, Self>,
                on: Exec<'e, Self>,
            ) -> BoxFuture<'e, Result<Done, sqlx::Error>> {
                Box::pin(async move {
                    let done = match on {
                        Exec::Pool(pool) => q.execute(pool).await?,
                        Exec::Conn(conn) => q.execute(conn).await?,
                    };
                    Ok(Done {
                        rows: done.rows_affected(),
                    })
                })
            }

            fn fetch_all<'e, 'q: 'e>(
                q: Stmt<'q, Self>,
                on: Exec<'e, Self>,
            ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>> {
                Box::pin(async move {
                    match on {
                        Exec::Pool(pool) => q.fetch_all(pool).await,
                        Exec::Conn(conn) => q.fetch_all(conn).await,
                    }
                })
            }

            fn fetch_optional<'e, 'q: 'e>(
                q: Stmt<'q, Self>,
                on: Exec<'e, Self>,
            ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>> {
                Box::pin(async move {
                    match on {
                        Exec::Pool(pool) => q.fetch_optional(pool).await,
                        Exec::Conn(conn) => q.fetch_optional(conn).await,
                    }
                })
            }

            fn fetch<'e, 'q: 'e>(
                q: Stmt<'q, Self>,
                on: Exec<'e, Self>,
            ) -> BoxStream<'e, Result<Self::Row, sqlx::Error>> {
                match on {
                    Exec::Pool(pool) => q.fetch(pool),
                    Exec::Conn(conn) => q.fetch(conn),
                }
            }

            fn write_tx(
                pool: &Pool<Self>,
            ) -> BoxFuture<'_, Result<Transaction<'static, Self>, sqlx::Error>> {
                let $pool = pool;
                Box::pin($begin)
            }
        }
    };
}

#[cfg(feature = "sqlite")]
dialect!(sqlx::Sqlite, false, no_feed, |pool| pool
    .begin_with("BEGIN IMMEDIATE"));
#[cfg(feature = "postgres")]
dialect!(sqlx::Postgres, true, pg_feed, |pool| pool.begin());

/// SQLite has no notifications: processes poll the data version.
#[cfg(feature = "sqlite")]
async fn no_feed(_: &Pool<sqlx::Sqlite>) -> Result<Option<crate::ChangeFeed>, sqlx::Error> {
    Ok(None)
}

/// `LISTEN cloudbill_changes` on a connection of its own; each notification's payload is
/// the domain id whose version moved. The listener reconnects by itself after a lost
/// connection (notifications sent meanwhile are lost: callers poll too, more slowly).
#[cfg(feature = "postgres")]
async fn pg_feed(pool: &Pool<sqlx::Postgres>) -> Result<Option<crate::ChangeFeed>, sqlx::Error> {
    use futures::StreamExt;
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(super::costs::CHANGES_CHANNEL).await?;
    let stream = listener.into_stream().filter_map(|n| async move {
        match n {
            Ok(n) => n.payload().parse::<cloudbill_core::DomainId>().ok(),
            Err(e) => {
                tracing::warn!(error = %e, "change feed interrupted; reconnecting");
                None
            }
        }
    });
    Ok(Some(Box::pin(stream)))
}

/// `.arg(v)`: binds `v` on any dialect (sqlx's own `.bind` needs the database's concrete type).
pub(crate) trait Arg<'q, D: Dialect>: Sized {
    /// The statement with `v` bound to its next placeholder.
    fn arg<T>(self, v: T) -> Self
    where
        D: Bind<'q, T>;
}

impl<'q, D: Dialect> Arg<'q, D> for Stmt<'q, D> {
    fn arg<T>(self, v: T) -> Self
    where
        D: Bind<'q, T>,
    {
        D::bind(self, v)
    }
}

/// Running a statement on any dialect: `.run`, `.all`, `.optional`, `.one`, `.stream`.
pub(crate) trait Run<'q, D: Dialect>: Sized {
    /// Runs it, returning what it did.
    fn run<'e>(self, on: impl Into<Exec<'e, D>>) -> BoxFuture<'e, Result<Done, sqlx::Error>>
    where
        'q: 'e;
    /// Runs it, returning all its rows.
    fn all<'e>(self, on: impl Into<Exec<'e, D>>) -> BoxFuture<'e, Result<Vec<D::Row>, sqlx::Error>>
    where
        'q: 'e;
    /// Runs it, returning its first row if it has one.
    fn optional<'e>(
        self,
        on: impl Into<Exec<'e, D>>,
    ) -> BoxFuture<'e, Result<Option<D::Row>, sqlx::Error>>
    where
        'q: 'e;
    /// Runs it, returning its first row, `RowNotFound` if none.
    fn one<'e>(self, on: impl Into<Exec<'e, D>>) -> BoxFuture<'e, Result<D::Row, sqlx::Error>>
    where
        'q: 'e,
        Self: 'e,
    {
        let rows = self.optional(on);
        Box::pin(async move { rows.await?.ok_or(sqlx::Error::RowNotFound) })
    }
    /// Runs it, returning its rows as they arrive.
    fn stream<'e>(self, on: impl Into<Exec<'e, D>>) -> BoxStream<'e, Result<D::Row, sqlx::Error>>
    where
        'q: 'e;
}

impl<'q, D: Dialect> Run<'q, D> for Stmt<'q, D> {
    fn run<'e>(self, on: impl Into<Exec<'e, D>>) -> BoxFuture<'e, Result<Done, sqlx::Error>>
    where
        'q: 'e,
    {
        D::execute(self, on.into())
    }

    fn all<'e>(self, on: impl Into<Exec<'e, D>>) -> BoxFuture<'e, Result<Vec<D::Row>, sqlx::Error>>
    where
        'q: 'e,
    {
        D::fetch_all(self, on.into())
    }

    fn optional<'e>(
        self,
        on: impl Into<Exec<'e, D>>,
    ) -> BoxFuture<'e, Result<Option<D::Row>, sqlx::Error>>
    where
        'q: 'e,
    {
        D::fetch_optional(self, on.into())
    }

    fn stream<'e>(self, on: impl Into<Exec<'e, D>>) -> BoxStream<'e, Result<D::Row, sqlx::Error>>
    where
        'q: 'e,
    {
        D::fetch(self, on.into())
    }
}

/// `row.col("name")`: reads a column on any dialect.
pub(crate) trait Col: sqlx::Row {
    /// Column `col` as a `T`.
    fn col<'r, T>(&'r self, col: &str) -> Result<T, sqlx::Error>
    where
        Self::Database: Get<'r, T>;
}

impl<R: sqlx::Row> Col for R {
    fn col<'r, T>(&'r self, col: &str) -> Result<T, sqlx::Error>
    where
        Self::Database: Get<'r, T>,
    {
        <R::Database as Get<'r, T>>::get(self, col)
    }
}

/// A row of any dialect (for row mappers that take rows of either database).
pub(crate) trait SqlRow: sqlx::Row<Database: Dialect> {}

impl<R: sqlx::Row<Database: Dialect>> SqlRow for R {}
