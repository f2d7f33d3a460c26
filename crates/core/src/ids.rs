//! Typed identifiers: a `ProjectId` can never be passed where an `AccountId` is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ValidationError;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| ValidationError::Id {
                    what: $what,
                    value: s.to_owned(),
                })
            }
        }
    };
}

id_type!(
    /// Identifies a domain (tenant).
    DomainId,
    "domain"
);
id_type!(
    /// Identifies a project group.
    GroupId,
    "project group"
);
id_type!(
    /// Identifies a project.
    ProjectId,
    "project"
);
id_type!(
    /// Identifies a billing service account.
    AccountId,
    "service account"
);
id_type!(
    /// Identifies an API token.
    TokenId,
    "token"
);
id_type!(
    /// Identifies a sync or import job.
    JobId,
    "job"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = ProjectId::new();
        let parsed: ProjectId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
    }

    #[test]
    fn malformed_id_names_its_kind() {
        let err = "nope".parse::<AccountId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"nope\" is not a valid service account id"
        );
    }
}
id_type!(
    /// Identifies an allocation rule (all its versions).
    AllocationId,
    "allocation rule"
);
id_type!(
    /// Identifies a budget.
    BudgetId,
    "budget"
);
id_type!(
    /// Identifies a notification channel.
    ChannelId,
    "channel"
);
id_type!(
    /// Identifies an event (the id a receiver dedupes on).
    EventId,
    "event"
);
id_type!(
    /// Identifies one delivery of an event to one channel.
    DeliveryId,
    "delivery"
);
id_type!(
    /// Identifies an anomaly monitor.
    MonitorId,
    "anomaly monitor"
);
