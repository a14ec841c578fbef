//! A scratch PostgreSQL database of the local server, for a shared store.

use std::process::Command;

use crate::{run_ok, stdout_of};

/// A fresh, empty PostgreSQL database on the local server (127.0.0.1:5432), dropped
/// when the guard goes. Fails loudly if PostgreSQL does not answer.
pub struct PostgresDatabase {
    pub name: String,
}

impl PostgresDatabase {
    pub fn create() -> Self {
        let name = format!("kopplung_e2e_{}", uuid::Uuid::new_v4().simple());
        psql(&format!("CREATE DATABASE {name}"));
        Self { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// Runs one statement on the `test` database as `postgres`.
pub fn psql(sql: &str) -> String {
    psql_in("test", sql)
}

/// Runs one statement on `database` as `postgres`; unaligned output.
pub fn psql_in(database: &str, sql: &str) -> String {
    stdout_of(&run_ok(
        Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                database,
                "-c",
            ])
            .arg(sql),
        "psql (the PostgreSQL client) against PostgreSQL on 127.0.0.1:5432, which must be running (scripts/test starts it)",
    ))
}
