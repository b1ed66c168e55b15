//! Identity: who is calling. Verifies OIDC access tokens (JWTs signed by the company IdP) and
//! the opaque session tokens agentnet issues itself into [`domain::Principal`]s, and holds the
//! pieces of sign-in.
//!
//! [`TokenVerifier`] discovers the IdP lazily (`{issuer}/.well-known/openid-configuration`),
//! caches its JWKS (refreshed on an unknown `kid`, at most once per
//! [`OidcSettings::jwks_min_refresh_interval`]), accepts only asymmetric algorithms whose key
//! agrees with the token header, checks `iss`, `aud`, `exp` and `nbf`, and caches verified
//! claims by SHA-256 digest of the token until `exp`: a repeat request costs a hash and a map
//! lookup. Tokens are never logged.
//!
//! ```no_run
//! # async fn authenticate(headers: &http::HeaderMap) -> Result<(), Box<dyn std::error::Error>> {
//! use identity::{bearer_token, AuthError, OidcSettings, TokenVerifier};
//!
//! let verifier = TokenVerifier::new(OidcSettings::new("https://idp.example", ["agentnet"]))?;
//! let token = bearer_token(headers).ok_or(AuthError::Missing)?;
//! let principal = verifier.verify(token, std::time::SystemTime::now()).await?;
//! # let _ = principal;
//! # Ok(())
//! # }
//! ```
//!
//! Sign-in, where the server issues its own sessions:
//! - [`secret_token`](issue_token): opaque tokens (`agentnet_at_…`, `agentnet_rt_…`, setup keys,
//!   device and authorization codes) of 256 random bits, stored only as their SHA-256
//!   [`TokenDigest`], and RFC 8628 user codes.
//! - [`SessionTable`]: the data plane's map from access-token digest to session; a request costs
//!   a hash and a read-locked lookup, and a revocation applies to the next request.
//! - [`IdpClient`]: the OAuth/OIDC client with which the server brokers the device flow and
//!   code + PKCE sign-in against the company IdP, refreshes and revokes.
//! - PKCE `S256` ([`verify_s256`]) for the server's own authorization endpoint, and argon2id
//!   [`hash_password`] / [`verify_password`] for local accounts.

mod bearer;
mod broker;
mod cache;
mod claims;
mod error;
mod fetch;
mod jwks;
mod jwt;
mod password;
mod pkce;
mod secret_token;
mod sessions;
mod settings;
mod verifier;

pub use bearer::bearer_token;
pub use broker::{
    BrokerError, ClientCredentials, DeviceAuthorization, IdpClient, IdpEndpoints, TokenSet,
    UnavailableError,
};
pub use error::{AuthError, Error};
pub use password::{
    check_password_policy, generate_password, hash_password, verify_password, PasswordError,
    MAX_PASSWORD_LEN, MIN_PASSWORD_LEN,
};
pub use pkce::{
    is_valid_challenge, is_valid_verifier, new_verifier, s256_challenge, verify_s256,
    MAX_VERIFIER_LEN, MIN_VERIFIER_LEN,
};
pub use secret_token::{
    issue_token, new_user_code, normalize_user_code, IssuedToken, RandomError, TokenDigest,
    TokenKind,
};
pub use sessions::{SessionEntry, SessionTable};
pub use settings::OidcSettings;
pub use verifier::TokenVerifier;
