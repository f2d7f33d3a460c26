//! The names and structure the engine resolves ids against, and its dictionaries.

use cloudbill_core::{AccountId, Assignment, GroupId, ProjectId};

/// A billing account as the engine needs it.
#[derive(Debug, Clone)]
pub struct CatalogAccount {
    /// Id.
    pub id: AccountId,
    /// Name shown in results.
    pub name: String,
    /// Project history, oldest first.
    pub history: Vec<Assignment>,
}

/// A project as the engine needs it.
#[derive(Debug, Clone)]
pub struct CatalogProject {
    /// Id.
    pub id: ProjectId,
    /// Name shown in results.
    pub name: String,
    /// Its group.
    pub group: Option<GroupId>,
}

/// A project group as the engine needs it.
#[derive(Debug, Clone)]
pub struct CatalogGroup {
    /// Id.
    pub id: GroupId,
    /// Name shown in results.
    pub name: String,
    /// Parent group.
    pub parent: Option<GroupId>,
}

/// Names and structure the engine resolves ids against.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Billing accounts.
    pub accounts: Vec<CatalogAccount>,
    /// Projects.
    pub projects: Vec<CatalogProject>,
    /// Project groups.
    pub groups: Vec<CatalogGroup>,
}

/// The value shown for a project, group or instance type that is absent.
pub(super) const NONE: &str = crate::query::NO_VALUE;
/// The project of costs whose account has no assignment for that day.
pub(super) const UNASSIGNED: &str = "(unassigned)";

/// A string dictionary: value ↔ dense id.
pub(super) type Dict = cloudbill_columnar::Interner;
