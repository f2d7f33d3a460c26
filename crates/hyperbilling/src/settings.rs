//! What a Hyperbilling account gives the provider: the SpaceONE form's Account / Email / Key
//! and the API's endpoint, declared once as the provider's settings.

use cloudbill_core::{
    ClientSecret, ProviderKind, ProviderSpec, SettingKind, SettingSpec, Settings, ValidationError,
};
use cloudbill_provider::ProviderError;

/// The provider's declaration: kind `hyperbilling-aws` and its four settings.
pub static SPEC: ProviderSpec = ProviderSpec {
    kind: ProviderKind::HyperbillingAws,
    title: "Hyperbilling for AWS",
    settings: &[
        SettingSpec::new(
            "account",
            "the linked AWS account to read (its 12 digits; none: every account the key reads)",
        )
        .kind(SettingKind::Digits),
        SettingSpec::new("email", "the client id, sent as X-Client-Id")
            .required()
            .kind(SettingKind::Email),
        SettingSpec::new("key", "the client secret, sent as X-Client-Secret")
            .required()
            .secret(),
        SettingSpec::new(
            "endpoint",
            "the API's base URL (none: the deployment's CLOUDBILL_HYPERBILLING_ENDPOINT)",
        )
        .kind(SettingKind::Url),
    ],
};

/// Hyperbilling's spelling of its settings (`--account`, `--email`, `--key`, `--endpoint`):
/// the settings and secrets an account is added with.
pub fn settings(account: &str, email: &str, key: &str, endpoint: Option<&str>) -> Settings {
    let mut s = Settings::default().with_value("email", email);
    if !account.trim().is_empty() {
        s = s.with_value("account", account);
    }
    if let Some(endpoint) = endpoint {
        s = s.with_value("endpoint", endpoint);
    }
    match ClientSecret::new(key) {
        Ok(key) => s.with_secret("key", key),
        // An empty key is left out: the spec's check names it as missing.
        Err(_) => s,
    }
}

/// An account's settings as the client reads them.
pub(crate) struct Credentials<'a> {
    pub(crate) account: &'a str,
    pub(crate) email: &'a str,
    pub(crate) key: &'a ClientSecret,
    /// Without a trailing slash.
    pub(crate) endpoint: &'a str,
}

impl<'a> Credentials<'a> {
    /// The credentials in `settings` (prepared: the endpoint is there).
    pub(crate) fn of(settings: &'a Settings) -> Result<Self, ProviderError> {
        let given = cloudbill_provider::Given::new(settings);
        Ok(Self {
            account: given.value("account").unwrap_or(""),
            email: given.required("email")?,
            key: given.secret("key")?,
            endpoint: given.required("endpoint")?.trim_end_matches('/'),
        })
    }

    /// The cloud account named in errors: the linked account, else the client id.
    pub(crate) fn who(&self) -> &'a str {
        if self.account.is_empty() {
            self.email
        } else {
            self.account
        }
    }
}

/// `settings` with the endpoint a deployment gives accounts registered without one.
pub(crate) fn prepared(
    settings: Settings,
    default_endpoint: Option<&str>,
) -> Result<Settings, ValidationError> {
    if settings.value("endpoint").is_some() {
        return Ok(settings);
    }
    let endpoint = default_endpoint.ok_or_else(|| ValidationError::Endpoint {
        value: String::new(),
        reason: "missing (expected an http:// or https:// URL; or set the deployment's \
                 CLOUDBILL_HYPERBILLING_ENDPOINT)"
            .into(),
    })?;
    let checked = SPEC
        .setting("endpoint")
        .map_or_else(|| Ok(endpoint.to_owned()), |spec| spec.check(endpoint))?;
    Ok(settings.with_value("endpoint", &checked))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn checked(s: &Settings) -> Result<Settings, ValidationError> {
        let secrets: BTreeMap<String, ClientSecret> = s
            .secret_names()
            .map(|n| (n.to_owned(), s.secret(n).cloned().unwrap()))
            .collect();
        SPEC.settings_of(s.values(), &secrets)
    }

    #[test]
    fn the_forms_fields_are_checked_as_settings() {
        let ok = settings(
            "111111111111",
            "ops@example.com",
            "s3cr3t",
            Some("http://127.0.0.1:9/"),
        );
        let s = checked(&ok).unwrap();
        assert!(!format!("{s:?}").contains("s3cr3t"));
        assert!(checked(&settings("", "a@b", "k", Some("http://h"))).is_ok());
        for bad in [
            settings("12ab", "a@b", "k", Some("http://h")),
            settings("1", "nobody", "k", Some("http://h")),
            settings("1", "a@b", " ", Some("http://h")),
            settings("1", "a@b", "k", Some("ftp://x")),
            settings("1", "a@b", "k", Some("http://u:p@host")),
            settings("1", "a@b", "k", Some("https://h/?q=1")),
        ] {
            assert!(checked(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_endpoint_is_the_deployments() {
        let s = settings("", "a@b", "k", None);
        assert!(prepared(s.clone(), None).is_err());
        let p = prepared(s, Some("http://127.0.0.1:9")).unwrap();
        assert_eq!(p.value("endpoint"), Some("http://127.0.0.1:9"));
        let c = Credentials::of(&p).unwrap();
        assert_eq!((c.who(), c.endpoint), ("a@b", "http://127.0.0.1:9"));
    }
}
