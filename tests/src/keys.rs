//! The service keys (LeiKa) and municipality keys (ARS) of the demo's routing table that
//! the tests use.

/// Mängelanzeige.
pub const MAENGEL: &str = "99999001000000";
/// Meldebescheinigung.
pub const MELDEBESCHEINIGUNG: &str = "99115003000000";
/// Dresden.
pub const DRESDEN: &str = "146120000000";
/// Leipzig.
pub const LEIPZIG: &str = "147130000000";
/// Chemnitz.
pub const CHEMNITZ: &str = "145110000000";
