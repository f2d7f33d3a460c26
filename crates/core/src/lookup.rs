//! How a caller names a project, group or account: by id or by name — one rule everywhere.

use uuid::Uuid;

/// A name-or-id as a caller typed it, trimmed. A key of the form of an id (a UUID in any
/// spelling) matches ids only; any other key matches names only. Names can never take the
/// form of an id ([`crate::Name::parse`] refuses it), so a key means one object.
///
/// ```
/// use cloudbill_core::{Lookup, ProjectId};
/// let id = ProjectId::new();
/// assert!(Lookup::parse(" web ").matches("web", id.as_uuid()));
/// assert!(Lookup::parse(&id.to_string().to_uppercase()).matches("other", id.as_uuid()));
/// assert!(!Lookup::parse(&id.to_string()).matches(&id.to_string(), ProjectId::new().as_uuid()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// By id.
    Id(Uuid),
    /// By name.
    Name(&'a str),
}

impl<'a> Lookup<'a> {
    /// Reads `raw` (surrounding spaces ignored).
    pub fn parse(raw: &'a str) -> Self {
        let key = raw.trim();
        match Uuid::try_parse(key) {
            Ok(id) => Lookup::Id(id),
            Err(_) => Lookup::Name(key),
        }
    }

    /// Whether the object called `name` with id `id` is the one named.
    pub fn matches(&self, name: &str, id: Uuid) -> bool {
        match self {
            Lookup::Id(wanted) => *wanted == id,
            Lookup::Name(wanted) => name == *wanted,
        }
    }
}
