//! The SQLite store's pickup (messages a procedure collects, attachment fragments): all
//! of it is written once for both backends ([`crate::shared::roles::role_impl`]).

use super::*;
use crate::shared::roles::role_impl;

role_impl!(PickupStore for SqliteStore {});
