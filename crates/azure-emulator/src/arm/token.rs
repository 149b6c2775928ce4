//! Access tokens: JWTs (so that clients that peek at `exp` or `aud` find them) signed
//! with HMAC-SHA256 under a key that exists only in this emulator's memory, so that
//! only tokens it issued since it started are accepted, and checked without any
//! stored state.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::time::unix_seconds;

type HmacSha256 = Hmac<Sha256>;

/// What a token says, as far as the emulator cares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The resource the token is for (the scope without `/.default`).
    pub(crate) aud: String,
    pub(crate) iss: String,
    pub(crate) iat: u64,
    pub(crate) nbf: u64,
    pub(crate) exp: u64,
    /// The client (application) id.
    pub(crate) appid: String,
    pub(crate) tid: String,
    pub(crate) oid: String,
    pub(crate) sub: String,
    /// A unique id of this token.
    pub(crate) uti: String,
    pub(crate) ver: String,
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    /// Not a JWT, or not signed by this emulator.
    Invalid,
    /// Issued here, but `exp` has passed.
    Expired { expired_at: u64 },
}

/// Issues and checks this emulator's tokens.
pub(crate) struct TokenIssuer {
    key: [u8; 32],
    tenant: String,
}

impl TokenIssuer {
    pub(crate) fn new(tenant: &str) -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        TokenIssuer { key, tenant: tenant.to_owned() }
    }

    /// A token for `audience`, issued to `client_id`, valid for `lifetime`.
    pub(crate) fn issue(&self, audience: &str, client_id: &str, lifetime: Duration) -> String {
        let now = unix_seconds(SystemTime::now());
        let claims = Claims {
            aud: audience.to_owned(),
            iss: format!("https://sts.windows.net/{}/", self.tenant),
            iat: now,
            nbf: now,
            exp: now + lifetime.as_secs(),
            appid: client_id.to_owned(),
            tid: self.tenant.clone(),
            oid: client_id.to_owned(),
            sub: client_id.to_owned(),
            uti: uuid::Uuid::new_v4().simple().to_string(),
            ver: "1.0".to_owned(),
        };
        let header =
            URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256","kid":"azure-emulator"}"#);
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize to JSON"));
        let signed = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(self.mac(signed.as_bytes()).finalize().into_bytes());
        format!("{signed}.{signature}")
    }

    /// The claims of a token this emulator issued and that has not expired.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, TokenProblem> {
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenProblem::Invalid)?;
        let (_, payload) = signed.split_once('.').ok_or(TokenProblem::Invalid)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenProblem::Invalid)?;
        self.mac(signed.as_bytes()).verify_slice(&signature).map_err(|_| TokenProblem::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenProblem::Invalid)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenProblem::Invalid)?;
        if unix_seconds(SystemTime::now()) >= claims.exp {
            return Err(TokenProblem::Expired { expired_at: claims.exp });
        }
        Ok(claims)
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(data);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_carry_their_claims() {
        let issuer = TokenIssuer::new("tenant-1");
        let token =
            issuer.issue("https://management.azure.com", "client-1", Duration::from_secs(60));
        assert_eq!(token.split('.').count(), 3);
        let claims = issuer.verify(&token).unwrap();
        assert_eq!(claims.aud, "https://management.azure.com");
        assert_eq!(claims.appid, "client-1");
        assert_eq!(claims.tid, "tenant-1");
        assert_eq!(claims.exp, claims.iat + 60);
    }

    #[test]
    fn foreign_tampered_and_expired_tokens_are_refused() {
        let issuer = TokenIssuer::new("t");
        let other = TokenIssuer::new("t");
        let token = other.issue("aud", "c", Duration::from_secs(60));
        assert_eq!(issuer.verify(&token), Err(TokenProblem::Invalid));

        let token = issuer.issue("aud", "c", Duration::from_secs(60));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"aud":"x"}"#);
        parts[1] = &forged;
        assert_eq!(issuer.verify(&parts.join(".")), Err(TokenProblem::Invalid));
        assert_eq!(issuer.verify("not a token"), Err(TokenProblem::Invalid));

        let expired = issuer.issue("aud", "c", Duration::ZERO);
        assert!(matches!(issuer.verify(&expired), Err(TokenProblem::Expired { .. })));
    }
}
