//! The two backends behind one harness: a case gets a [`Backend`] with a fresh, empty
//! store of either kind and whatever it needs to look behind the store's back.
//!
//! SQLite: a data directory of the test's own. PostgreSQL: a database of the test's own
//! (`kopplung_test_<uuid>`), created through the database named by
//! `KOPPLUNG_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and
//! dropped at the end, so the tests run in parallel and again. Without a reachable
//! PostgreSQL they fail; they never skip.

use std::sync::Arc;

use kopplung_core::store::Store;
use kopplung_core::{Clock, SystemClock};
use kopplung_store::{PostgresStore, SqliteStore};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use uuid::Uuid;

/// Which backend a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A fresh store of one kind, and the database under it.
pub struct Backend {
    pub kind: Kind,
    pub store: Arc<dyn Store>,
    /// The clock the store stamps times by (the system's unless a case sets one).
    clock: Arc<dyn Clock>,
    place: Place,
}

enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(TestDb),
}

impl Place {
    /// The store on this place's database, reading time from `clock`.
    async fn open(&self, clock: &Arc<dyn Clock>) -> Arc<dyn Store> {
        match self {
            Place::Sqlite(dir) => {
                Arc::new(SqliteStore::open(dir.path(), clock.clone()).await.unwrap())
            }
            Place::Postgres(db) => Arc::new(db.connect(clock.clone()).await),
        }
    }
}

/// The main store's instance id on PostgreSQL: the same across [`Backend::reopen`], as
/// a hub's across its restarts.
pub const MAIN_INSTANCE: &str = "kopplung-main";

impl Backend {
    pub async fn open(kind: Kind) -> Self {
        Self::open_with_clock(kind, Arc::new(SystemClock)).await
    }

    /// A fresh store that reads time from `clock`.
    pub async fn open_with_clock(kind: Kind, clock: Arc<dyn Clock>) -> Self {
        let place = match kind {
            Kind::Sqlite => Place::Sqlite(tempfile::tempdir().unwrap()),
            Kind::Postgres => Place::Postgres(TestDb::new().await),
        };
        Self::on(kind, place, clock).await
    }

    /// The store on `place`'s database, reading time from `clock`.
    async fn on(kind: Kind, place: Place, clock: Arc<dyn Clock>) -> Self {
        let store = place.open(&clock).await;
        Self {
            kind,
            store,
            clock,
            place,
        }
    }

    /// Another store on the same database, as another hub process sees it: a second
    /// instance (with an id of its own) on PostgreSQL; on SQLite (one process per data
    /// directory) the same store.
    pub async fn instance(&self) -> Arc<dyn Store> {
        match &self.place {
            Place::Sqlite(_) => self.store.clone(),
            Place::Postgres(db) => Arc::new(db.connect_instance(self.clock.clone(), None).await),
        }
    }

    /// A PostgreSQL store as the hub instance `instance` (PostgreSQL-only cases).
    pub async fn postgres_instance(&self, instance: &str) -> Arc<PostgresStore> {
        match &self.place {
            Place::Postgres(db) => Arc::new(
                db.connect_instance(self.clock.clone(), Some(instance))
                    .await,
            ),
            Place::Sqlite(_) => panic!("SQLite has no instances"),
        }
    }

    /// Two more instances (see [`Backend::instance`]).
    pub async fn two_instances(&self) -> [Arc<dyn Store>; 2] {
        [self.instance().await, self.instance().await]
    }

    /// The same database with a store that reads time from `clock`.
    pub async fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }.reopen().await
    }

    /// The hub restarts on the same database: the store is closed and opened again.
    pub async fn reopen(self) -> Self {
        let Self {
            kind,
            store,
            clock,
            place,
        } = self;
        // The old store (and its lock) must be gone before the new one opens.
        drop(store);
        Self::on(kind, place, clock).await
    }

    /// The SQLite data directory (SQLite-only cases).
    pub fn dir(&self) -> &std::path::Path {
        match &self.place {
            Place::Sqlite(dir) => dir.path(),
            Place::Postgres(_) => panic!("a PostgreSQL store has no data directory"),
        }
    }

    /// The PostgreSQL test database's URL (PostgreSQL-only cases).
    pub fn url(&self) -> &str {
        match &self.place {
            Place::Postgres(db) => &db.url,
            Place::Sqlite(_) => panic!("a SQLite store has no URL"),
        }
    }

    /// Runs statements on the database with a connection of its own (behind the
    /// store's back); the rows they touched.
    pub async fn execute(&self, sql: &str) -> u64 {
        match &self.place {
            Place::Sqlite(dir) => {
                let connection = SqliteConnectOptions::new()
                    .filename(dir.path().join("kopplung.db"))
                    .connect()
                    .await
                    .unwrap();
                execute_on(connection, sql).await.rows_affected()
            }
            Place::Postgres(db) => db.execute(sql).await,
        }
    }

    /// Runs one statement behind the store's back that must touch exactly one row.
    pub async fn tamper(&self, sql: &str) {
        assert_eq!(self.execute(sql).await, 1, "{sql}");
    }

    /// The literal of the single byte 0x00 in this database's SQL.
    pub fn x00(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite => "X'00'",
            Kind::Postgres => "'\\x00'::bytea",
        }
    }

    /// Makes the database forget that audit entries after `seq` were ever issued (as
    /// someone removing the chain's tail with its sequence would); the rows touched.
    pub async fn forget_issued_after(&self, seq: i64) -> u64 {
        self.execute(&match self.kind {
            Kind::Sqlite => {
                format!("UPDATE sqlite_sequence SET seq = {seq} WHERE name = 'audit_log'")
            }
            Kind::Postgres => format!("UPDATE audit_chains SET seq = {seq}"),
        })
        .await
    }
}

/// Runs every case on each backend: `contract! { role: case, ...; ... }` makes a test per
/// case and backend, `sqlite::case` and `postgres::case`, each calling `role::case` with a
/// fresh store of its kind.
#[macro_export]
macro_rules! contract {
    ($($role:ident: $($case:ident),+;)+) => {
        $crate::contract!(@on sqlite Sqlite $($role: $($case),+;)+);
        $crate::contract!(@on postgres Postgres $($role: $($case),+;)+);
    };
    (@on $module:ident $kind:ident $($role:ident: $($case:ident),+;)+) => {
        mod $module {
            $($(
                #[tokio::test]
                async fn $case() {
                    let backend = $crate::backend::Backend::open($crate::backend::Kind::$kind).await;
                    $crate::$role::$case(backend).await;
                }
            )+)+
        }
    };
}

/// A PostgreSQL database of a test's own, migrated only up to `version`: as a hub of an
/// older version left it. [`LegacyDb::open`] starts the store of this version on it.
pub struct LegacyDb(TestDb);

impl LegacyDb {
    pub async fn migrated_to(version: i64) -> Self {
        let db = TestDb::new().await;
        let mut connection = PgConnection::connect(&db.url).await.unwrap();
        sqlx::migrate!("./migrations/postgres")
            .run_to(version, &mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        Self(db)
    }

    /// Runs statements behind any store's back; the rows they touched.
    pub async fn execute(&self, sql: &str) -> u64 {
        self.0.execute(sql).await
    }

    /// The store of this version on the database (as [`MAIN_INSTANCE`]), which migrates
    /// it.
    pub async fn open(self) -> Backend {
        Backend::on(
            Kind::Postgres,
            Place::Postgres(self.0),
            Arc::new(SystemClock),
        )
        .await
    }
}

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn admin_url() -> String {
    std::env::var("KOPPLUNG_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

async fn admin_connection(url: &str) -> PgConnection {
    match PgConnection::connect(url).await {
        Ok(connection) => connection,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {url}: {e}. These tests need a real PostgreSQL \
             (trust authentication, database `test`); start it (scripts/lib/setup.sh \
             ensure_postgres) or point KOPPLUNG_TEST_POSTGRES_URL at one."
        ),
    }
}

/// A database of one test's own, dropped (with whatever still connects to it) when the
/// test ends, also when it fails.
struct TestDb {
    admin: String,
    name: String,
    url: String,
}

impl TestDb {
    async fn new() -> Self {
        let admin = admin_url();
        let name = format!("kopplung_test_{}", Uuid::new_v4().simple());
        let mut connection = admin_connection(&admin).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("creating the test database {name} on {admin}: {e}"));
        connection.close().await.unwrap();
        let (base, query) = match admin.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (admin.as_str(), String::new()),
        };
        let server = base
            .rsplit_once('/')
            .filter(|(server, _)| server.contains("://") && !server.ends_with('/'))
            .map_or(base, |(server, _)| server);
        let url = format!("{server}/{name}{query}");
        Self { admin, name, url }
    }

    /// The main store ([`MAIN_INSTANCE`]).
    async fn connect(&self, clock: Arc<dyn Clock>) -> PostgresStore {
        self.connect_instance(clock, Some(MAIN_INSTANCE)).await
    }

    /// A store as `instance`, or as an instance of a new id.
    async fn connect_instance(
        &self,
        clock: Arc<dyn Clock>,
        instance: Option<&str>,
    ) -> PostgresStore {
        let instance = match instance {
            Some(id) => kopplung_core::InstanceId::parse(id).unwrap(),
            None => kopplung_core::InstanceId::generate(),
        };
        PostgresStore::connect_as(&self.url, clock, &instance)
            .await
            .unwrap_or_else(|e| panic!("connecting the store to {}: {e}", self.url))
    }

    /// Runs one statement on the test database with a connection of its own (behind
    /// the store's back); returns the rows it touched.
    async fn execute(&self, sql: &str) -> u64 {
        let connection = PgConnection::connect(&self.url).await.unwrap();
        execute_on(connection, sql).await.rows_affected()
    }
}

/// Runs statements on `connection` and closes it.
async fn execute_on<C>(mut connection: C, sql: &str) -> <C::Database as sqlx::Database>::QueryResult
where
    C: Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    connection.close().await.unwrap();
    done
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime: drop the database from a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut connection)
                .await?;
                connection.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("dropping the test database {}: {e}", self.name);
        }
    }
}
