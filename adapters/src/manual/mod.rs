//! `manual` (E-Government-Reife level 0): the procedure has no interface. The message
//! waits in the hub's clerk inbox, where a clerk reads the application and takes it over;
//! taking it over is the delivery.

mod config;
mod sink;

pub use config::ManualConfig;
pub use sink::ManualSink;
