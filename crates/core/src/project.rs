//! Projects and the project-group tree they hang in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DomainId, GroupId, Name, ProjectId};

/// A node of the project-group tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectGroup {
    /// Identifier.
    pub id: GroupId,
    /// Owning domain.
    pub domain: DomainId,
    /// Name, unique within the domain.
    pub name: Name,
    /// Parent group, `None` at the root.
    pub parent: Option<GroupId>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A project: what billing accounts are assigned to and what reports are split by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Identifier.
    pub id: ProjectId,
    /// Owning domain.
    pub domain: DomainId,
    /// Name, unique within the domain.
    pub name: Name,
    /// The group the project belongs to, if any.
    pub group: Option<GroupId>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}
