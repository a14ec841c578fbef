//! `fitconnect` (E-Government-Reife level 1, as FIT-Connect defines the subscriber): the
//! procedure collects its messages like a FIT-Connect subscriber from the hub's
//! Submission API (`/fitconnect/v1/submissions`), each encrypted at collection for the
//! procedure's own key, and answers with signed events (`accept-submission`,
//! `reject-submission`). The message waits in the hub until it is collected; collecting
//! it is the delivery.

mod config;
mod sink;

pub use config::FitConnectSinkConfig;
pub use sink::FitConnectSink;
