//! Errors: [`AuthError`] is why a token was refused (safe to show a client), [`Error`] is a
//! verifier or IdP client that cannot be built from its settings.

/// Why a token was refused. `Display` is a human message that leaks no internals (a gateway
/// can put it in a 401 body); [`AuthError::reason`] is a stable machine code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("no access token")]
    Missing,
    /// Not a compact JWS, bad base64 or JSON, or a required claim missing or mistyped.
    #[error("access token is malformed")]
    Malformed,
    /// `alg` is not an allowed asymmetric algorithm (`none` and HMAC included). The value is the
    /// header's `alg`, reduced to at most 16 harmless characters.
    #[error("token algorithm {0} is not allowed")]
    UnsupportedAlgorithm(String),
    /// No published key has the token's `kid`, even after a JWKS refresh.
    #[error("token signing key is unknown")]
    UnknownKey,
    /// The key named by `kid` is of another type or algorithm than the token header says.
    #[error("token algorithm does not match its signing key")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    #[error("token is not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not trusted")]
    WrongIssuer,
    /// None of the token's audiences is configured.
    #[error("token audience is not this gateway")]
    WrongAudience,
    /// The token has an `email` whose `email_verified` is false.
    #[error("token email address is not verified")]
    UnverifiedEmail,
    /// An ID token's `nonce` is not the one its sign-in sent (a replayed or injected token).
    #[error("token nonce does not match the sign-in")]
    NonceMismatch,
    /// The IdP's discovery document or keys could not be fetched, so the token cannot be
    /// checked: callers answer 503, not 401. Details are logged by the verifier.
    #[error("identity provider is unavailable")]
    IdpUnavailable,
    /// An agentnet session token that is not (or no longer) in the session table: never issued,
    /// revoked, expired or rotated away.
    #[error("session is unknown, expired or revoked; sign in again (agentnet login)")]
    SessionUnknown,
}

impl AuthError {
    /// A stable machine-readable code, e.g. `token_expired`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "token_missing",
            AuthError::Malformed => "token_malformed",
            AuthError::UnsupportedAlgorithm(_) => "token_algorithm_unsupported",
            AuthError::UnknownKey => "token_key_unknown",
            AuthError::KeyMismatch => "token_key_mismatch",
            AuthError::BadSignature => "token_signature_invalid",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::WrongIssuer => "token_issuer_invalid",
            AuthError::WrongAudience => "token_audience_invalid",
            AuthError::UnverifiedEmail => "token_email_unverified",
            AuthError::NonceMismatch => "token_nonce_mismatch",
            AuthError::IdpUnavailable => "idp_unavailable",
            AuthError::SessionUnknown => "session_unknown",
        }
    }

    /// True when the failure is ours or the IdP's, not the caller's (answer 503, not 401).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::IdpUnavailable)
    }

    /// `UnsupportedAlgorithm` for an attacker-chosen `alg` value, made safe to echo.
    pub(crate) fn unsupported_algorithm(alg: &str) -> Self {
        let shown: String = alg
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
            .take(16)
            .collect();
        AuthError::UnsupportedAlgorithm(if shown.is_empty() { "(empty)".into() } else { shown })
    }
}

/// A [`crate::TokenVerifier`] or [`crate::IdpClient`] cannot be built from these settings.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The issuer does not form a valid discovery URL.
    #[error("oidc issuer {issuer:?} is not a valid URL")]
    IssuerUrl {
        issuer: String,
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The issuer is not an absolute `http` or `https` URL.
    #[error("oidc issuer {issuer:?} must be an absolute http or https URL")]
    IssuerScheme { issuer: String },
    /// No (non-empty) audience is configured: every token would be refused.
    #[error("oidc settings name no audience")]
    NoAudience,
    /// The groups claim name is empty.
    #[error("oidc groups claim name is empty")]
    EmptyGroupsClaim,
    /// The OAuth client id is empty.
    #[error("oauth client id is empty")]
    EmptyClientId,
    /// The client id and secret cannot form an HTTP Basic authorization header (not expected:
    /// both are form-urlencoded and base64-encoded).
    #[error("oauth client credentials cannot form an authorization header")]
    ClientCredentials,
    /// The TLS client could not be configured.
    #[error("cannot configure the tls client")]
    Tls(#[source] rustls::Error),
}

/// Formats an error with its whole `source` chain (`a: b: c`), for logs.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}
