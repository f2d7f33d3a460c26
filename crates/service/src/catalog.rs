//! The catalog use cases: providers, project groups and projects.

use cloudbill_core::{
    GroupId, Name, Project, ProjectGroup, ProjectId, ProviderEntry, ProviderState,
};

use crate::{billing::matches, Billing, Principal, ServiceError};

impl Billing {
    /// The provider registry of the domain.
    pub async fn providers(&self, p: &Principal) -> Result<Vec<ProviderEntry>, ServiceError> {
        p.require_admin("list providers")?;
        Ok(self.catalog_store().providers(self.domain_id()).await?)
    }

    /// Enables or disables a provider by name (admin only).
    pub async fn set_provider_state(
        &self,
        p: &Principal,
        name: &str,
        state: ProviderState,
    ) -> Result<ProviderEntry, ServiceError> {
        p.require_admin("enable or disable providers")?;
        // A provider this build does not have is not found, as an object in a path.
        let kind = self
            .offered_provider(name)
            .map_err(|_| ServiceError::NotFound {
                what: "provider",
                key: cloudbill_core::cut(name, 64).into_owned(),
            })?;
        Ok(self
            .catalog_store()
            .set_provider_state(self.domain_id(), kind, state)
            .await?)
    }

    /// Creates a project group, optionally under `parent` (admin only).
    pub async fn create_group(
        &self,
        p: &Principal,
        name: &str,
        parent: Option<&str>,
    ) -> Result<ProjectGroup, ServiceError> {
        p.require_admin("create project groups")?;
        let name = Name::parse(name, "project group name")?;
        let parent = match parent {
            Some(key) => Some(self.group(key).await?.id),
            None => None,
        };
        let group = ProjectGroup {
            id: GroupId::new(),
            domain: self.domain_id(),
            name,
            parent,
            created_at: self.now(),
        };
        self.catalog_store().create_group(&group).await?;
        Ok(group)
    }

    /// Every project group.
    pub async fn groups(&self, p: &Principal) -> Result<Vec<ProjectGroup>, ServiceError> {
        p.require_admin("list project groups")?;
        Ok(self.catalog_store().groups(self.domain_id()).await?)
    }

    async fn group(&self, key: &str) -> Result<ProjectGroup, ServiceError> {
        self.catalog_store()
            .groups(self.domain_id())
            .await?
            .into_iter()
            .find(|g| matches(&g.name, g.id.as_uuid(), key))
            .ok_or_else(|| ServiceError::NotFound {
                what: "project group",
                key: key.to_owned(),
            })
    }

    /// Creates a project, optionally in `group` (admin only).
    pub async fn create_project(
        &self,
        p: &Principal,
        name: &str,
        group: Option<&str>,
    ) -> Result<Project, ServiceError> {
        p.require_admin("create projects")?;
        let name = Name::parse(name, "project name")?;
        let group = match group {
            Some(key) => Some(self.group(key).await?.id),
            None => None,
        };
        let project = Project {
            id: ProjectId::new(),
            domain: self.domain_id(),
            name,
            group,
            created_at: self.now(),
        };
        self.catalog_store().create_project(&project).await?;
        Ok(project)
    }

    /// The projects the principal may see.
    pub async fn projects(&self, p: &Principal) -> Result<Vec<Project>, ServiceError> {
        let all = self.catalog_store().projects(self.domain_id()).await?;
        Ok(all.into_iter().filter(|x| p.may_read(x.id)).collect())
    }

    /// One project, by name or id.
    pub async fn project(&self, p: &Principal, key: &str) -> Result<Project, ServiceError> {
        let project = self
            .catalog_store()
            .projects(self.domain_id())
            .await?
            .into_iter()
            .find(|x| matches(&x.name, x.id.as_uuid(), key))
            .ok_or_else(|| ServiceError::NotFound {
                what: "project",
                key: key.to_owned(),
            })?;
        if !p.may_read(project.id) {
            // The same answer as for a project that does not exist: a member learns nothing
            // of other projects, not even that a name is taken.
            return Err(ServiceError::NotFound {
                what: "project",
                key: key.to_owned(),
            });
        }
        Ok(project)
    }

    /// Deletes a project no account was ever assigned to (admin only).
    pub async fn delete_project(&self, p: &Principal, key: &str) -> Result<(), ServiceError> {
        p.require_admin("delete projects")?;
        let project = self.project(p, key).await?;
        Ok(self
            .catalog_store()
            .delete_project(self.domain_id(), project.id)
            .await?)
    }
}
