//! What a caller can do about an error, as data: each binary renders it in its own terms (the
//! CLI as a command, the API as a request), so the service never speaks either's syntax.

/// A remedy for a refused call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// A domain admin turns billing on.
    EnableBilling,
    /// A domain admin enables this provider.
    EnableProvider(String),
    /// A domain admin enables this billing account.
    EnableAccount(String),
    /// The call needs a project (every billing account belongs to one; member tokens too).
    NameProject,
    /// The provider needs settings an account did not give: the provider's kind (its
    /// settings are listed by `provider show KIND`, `GET /api/v1/providers/{kind}`).
    GiveSettings(String),
    /// Bills are imported into an account of provider `file`.
    UseFileAccount,
    /// A `file` account is filled by importing a bill, not by a sync.
    ImportBill,
    /// An admin token covers the whole domain: no project.
    DropProject,
}

impl Hint {
    /// The remedy in plain words, for any caller.
    pub fn describe(&self) -> String {
        match self {
            Hint::EnableBilling => "a domain admin can turn it on".into(),
            Hint::EnableProvider(p) => format!("a domain admin can enable provider {p}"),
            Hint::EnableAccount(a) => format!("a domain admin can enable account {a}"),
            Hint::NameProject => "name a project".into(),
            Hint::GiveSettings(kind) => format!("give the settings provider {kind} requires"),
            Hint::UseFileAccount => "import into an account of provider file".into(),
            Hint::ImportBill => "import a bill into it instead".into(),
            Hint::DropProject => "leave the project out".into(),
        }
    }

    /// A stable snake_case name, for machine-readable error details.
    pub fn code(&self) -> &'static str {
        match self {
            Hint::EnableBilling => "enable_billing",
            Hint::EnableProvider(_) => "enable_provider",
            Hint::EnableAccount(_) => "enable_account",
            Hint::NameProject => "name_project",
            Hint::GiveSettings(_) => "give_settings",
            Hint::UseFileAccount => "use_file_account",
            Hint::ImportBill => "import_bill",
            Hint::DropProject => "drop_project",
        }
    }
}
