//! Who is asking, and what they may do.

use cloudbill_core::ProjectId;

use crate::ServiceError;

/// The caller of a service function.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A domain administrator: everything in the domain.
    Admin,
    /// A project member: read-only billing of these projects (and of project groups only
    /// through them).
    ProjectMember {
        /// The projects the member belongs to.
        projects: Vec<ProjectId>,
    },
}

impl Principal {
    /// Fails unless the principal is an admin.
    pub(crate) fn require_admin(&self, action: &str) -> Result<(), ServiceError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::ProjectMember { .. } => Err(ServiceError::Forbidden(format!(
                "only a domain admin may {action}"
            ))),
        }
    }

    /// Whether the principal may read `project`.
    pub(crate) fn may_read(&self, project: ProjectId) -> bool {
        match self {
            Principal::Admin => true,
            Principal::ProjectMember { projects } => projects.contains(&project),
        }
    }
}
