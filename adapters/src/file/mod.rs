//! `file` (E-Government-Reife level 1, the oldest interface there is): the procedure
//! imports files from a folder and leaves its answers in another. The hub writes each
//! sealed message atomically (a hidden temporary name, fsync, rename) into the
//! procedure's `outgoing` folder, followed by a manifest; it reads the procedure's signed
//! events from the `incoming` folder and moves each to `taken/` or, with the reason, to
//! `refused/`. No network between the two: a shared disk or a synchronised share is
//! enough. See docs/vendors.md, "File drop".

mod config;
mod name;
mod sink;
mod source;
#[cfg(test)]
mod tests;

pub use crate::transport::AnswerFolder;
pub use config::FileConfig;
pub use name::FileName;
pub use sink::{FileSink, Manifest};
pub use source::{AnswerHandler, Answered, watch_answers};
