//! A service account's access token: an RS256-signed JWT exchanged at the key's token URI
//! (OAuth 2.0 JWT bearer grant), as Google's client libraries do.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cloudbill_provider::ProviderError;
use serde::Deserialize;

use crate::PROVIDER_NAME;

/// The scope asked for: read BigQuery (and run query jobs).
pub const SCOPE: &str = "https://www.googleapis.com/auth/bigquery.readonly";

/// The fields of a service account key file that cloudbill reads.
#[derive(Deserialize)]
pub struct ServiceAccountKey {
    /// `service_account`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The project the key belongs to (where query jobs run unless the account says).
    #[serde(default)]
    pub project_id: Option<String>,
    /// The account's e-mail: the JWT's issuer.
    pub client_email: String,
    /// Its PKCS#8 private key, PEM.
    pub private_key: String,
    /// Where tokens are issued.
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl ServiceAccountKey {
    /// Reads a key file's JSON.
    pub fn parse(json: &str) -> Result<Self, String> {
        let key: Self = serde_json::from_str(json)
            .map_err(|e| format!("not a service account key file: {e}"))?;
        if key.kind != "service_account" {
            return Err(format!(
                "a key of type {:?}, not \"service_account\"",
                key.kind
            ));
        }
        pkcs8(&key.private_key)?;
        Ok(key)
    }

    /// A JWT for `audience`, issued now, valid for an hour.
    pub fn assertion(&self, audience: &str, now: i64) -> Result<String, String> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iss": self.client_email, "scope": SCOPE, "aud": audience,
            "iat": now, "exp": now + 3600,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&pkcs8(&self.private_key)?)
            .map_err(|e| format!("the private key is not a usable RSA key: {e}"))?;
        let mut signature = vec![0; pair.public().modulus_len()];
        pair.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| "the JWT could not be signed".to_owned())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// A PEM `PRIVATE KEY` block's DER bytes.
pub(crate) fn pkcs8(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
        .skip(1)
        .take_while(|l| *l != "-----END PRIVATE KEY-----")
        .collect();
    if body.is_empty() {
        return Err("private_key holds no PEM PRIVATE KEY block".into());
    }
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("private_key is not valid PEM: {e}"))
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

/// Exchanges a signed JWT for an access token at the key's token URI.
pub(crate) async fn access_token(
    client: &reqwest::Client,
    key: &ServiceAccountKey,
    token_uri: &str,
    who: &str,
) -> Result<String, ProviderError> {
    let now = chrono::Utc::now().timestamp();
    let assertion = key
        .assertion(token_uri, now)
        .map_err(ProviderError::InvalidRequest)?;
    let response = client
        .post(token_uri)
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ])
        .send()
        .await
        .map_err(|e| crate::unavailable(&format!("token request: {}", e.without_url())))?;
    let status = response.status();
    let body = cloudbill_outbound::read_limited(response, 1 << 20)
        .await
        .map_err(|e| crate::unavailable(&format!("token answer: {e}")))?;
    if status.as_u16() == 400 || status.as_u16() == 401 || status.as_u16() == 403 {
        return Err(ProviderError::Unauthorized {
            provider: PROVIDER_NAME,
            account: who.to_owned(),
        });
    }
    if !status.is_success() {
        return Err(crate::unavailable(&format!(
            "the token endpoint answered HTTP {status}"
        )));
    }
    let answer: TokenAnswer =
        serde_json::from_slice(&body).map_err(|e| ProviderError::InvalidResponse {
            provider: PROVIDER_NAME,
            detail: format!("the token answer is not readable: {e}"),
        })?;
    Ok(answer.access_token)
}
