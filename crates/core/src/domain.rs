//! The tenant: a domain owns projects, accounts and cost data, and has billing on or off.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DomainId, Name};

/// A domain (tenant). Billing is off for a new domain until an admin enables it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// Identifier.
    pub id: DomainId,
    /// Unique name.
    pub name: Name,
    /// Whether billing is enabled; sync and report refuse to run while it is off.
    pub billing_enabled: bool,
    /// When the domain was created.
    pub created_at: DateTime<Utc>,
    /// When a system admin disabled it (`None`: enabled). A disabled domain's tokens are
    /// refused and its scheduled syncs skipped; its data is kept.
    #[serde(default)]
    pub disabled_at: Option<DateTime<Utc>>,
}
