//! Mock OIDC identity provider: discovery, JWKS and token minting for hermetic tests.
