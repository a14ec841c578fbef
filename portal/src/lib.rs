//! The citizens' portal: service catalogue, finder, online forms, drafts and mailbox,
//! server-rendered in German. It is a client of the router's public HTTP API
//! (`docs/api.md`) like any other portal, and keeps only what is the citizen's own.
//!
//! The spine submits through the API directly; the portal's pages are built on it by
//! the portal issue.
#![forbid(unsafe_code)]
