//! Identity: who is calling. Verifies OIDC access tokens (JWTs signed by the company IdP) into
//! [`domain::Principal`]s.
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

mod bearer;
mod cache;
mod claims;
mod error;
mod fetch;
mod jwks;
mod jwt;
mod settings;
mod verifier;

pub use bearer::bearer_token;
pub use error::{AuthError, Error};
pub use settings::OidcSettings;
pub use verifier::TokenVerifier;
