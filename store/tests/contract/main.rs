//! The store contract: every case runs on SQLite and on PostgreSQL (see
//! [`backend::Backend`]); what only one backend can show (several instances on one
//! database, SQLite's lock file and read-only store) stands beside, named after it.

mod backend;
mod support;

mod audit;
mod events;
mod intake;
mod outbox;
mod oversight;
mod pickup;
