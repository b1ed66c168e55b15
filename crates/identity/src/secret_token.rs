//! Opaque secrets that agentnet issues itself: session access and refresh tokens, setup keys,
//! device codes and authorization codes (`agentnet_<kind>_<43 base64url chars>`), their SHA-256
//! digests (the only form ever stored), and RFC 8628 user codes (`BCDF-GHJK`).

#[cfg(test)]
mod tests;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use secrecy::SecretString;

/// Random bytes in a token: 256 bits.
const TOKEN_BYTES: usize = 32;

/// RFC 8628 §6.1 user-code alphabet: 20 consonants, no vowels (no accidental words), no
/// look-alikes of digits.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code, without its dash.
const USER_CODE_LEN: usize = 8;

/// Batches of 64 random bytes that may all be rejected before a generator gives up on a random
/// source that looks stuck (for a healthy one, even one such batch is practically impossible).
const MAX_FRUITLESS_ROUNDS: usize = 64;

/// The system random number generator failed: nothing secret can be issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// What an opaque token is for; its prefix says so, which lets secret scanners and people
/// recognize a leaked agentnet token and lets the server refuse one presented in the wrong
/// place before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Presented on every data-plane request; short-lived.
    Access,
    /// Exchanged for a new access token; rotated on use.
    Refresh,
    /// Enrolls an agent.
    SetupKey,
    /// RFC 8628 device code: what a CLI polls with while its user signs in.
    DeviceCode,
    /// Authorization code handed to a CLI's loopback redirect (code + PKCE).
    AuthCode,
}

impl TokenKind {
    /// Every kind.
    pub const ALL: [TokenKind; 5] = [
        TokenKind::Access,
        TokenKind::Refresh,
        TokenKind::SetupKey,
        TokenKind::DeviceCode,
        TokenKind::AuthCode,
    ];

    /// The prefix of tokens of this kind, e.g. `agentnet_at_`.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Access => "agentnet_at_",
            TokenKind::Refresh => "agentnet_rt_",
            TokenKind::SetupKey => "agentnet_sk_",
            TokenKind::DeviceCode => "agentnet_dc_",
            TokenKind::AuthCode => "agentnet_ac_",
        }
    }

    /// The kind named by `token`'s prefix. Only the prefix is looked at: whether the token
    /// exists is for a digest lookup to say.
    pub fn of(token: &str) -> Option<TokenKind> {
        TokenKind::ALL.into_iter().find(|kind| token.starts_with(kind.prefix()))
    }
}

/// A freshly issued token: the secret to hand out once, and the digest to store.
#[derive(Debug)]
pub struct IssuedToken {
    /// The whole token, prefix included. Shown to its holder once, never stored or logged.
    pub secret: SecretString,
    /// What the server keeps.
    pub digest: TokenDigest,
}

/// Issues a token of `kind`: its prefix and 32 bytes from the system CSPRNG, base64url
/// without padding (55 characters in all).
pub fn issue_token(kind: TokenKind) -> Result<IssuedToken, RandomError> {
    let bytes: [u8; TOKEN_BYTES] = random_bytes()?;
    let token = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
    let digest = TokenDigest::of(&token);
    Ok(IssuedToken { secret: SecretString::from(token), digest })
}

/// SHA-256 of a whole token string (prefix included).
///
/// A plain, unsalted and fast hash is the right choice here, unlike for passwords: the tokens
/// carry 256 random bits, so neither a dictionary nor brute force can invert the digest, and
/// salting or stretching would only put a slow hash on the per-request path. Being
/// deterministic is what lets a digest be the key of a map lookup.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of `token`.
    pub fn of(token: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }

    /// The raw digest, e.g. to store it.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A digest read back from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A digest read back from storage, if `bytes` has the right length.
    pub fn try_from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }
}

impl std::fmt::Debug for TokenDigest {
    /// The first 4 bytes in hex: enough to tell digests apart in logs, useless to an attacker.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenDigest(")?;
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A new RFC 8628 user code, `XXXX-XXXX` over [`USER_CODE_ALPHABET`]: about 34.6 bits, which
/// RFC 8628 §5.1 deems enough together with a short lifetime and rate-limited entry.
pub fn new_user_code() -> Result<String, RandomError> {
    let chars = random_chars(USER_CODE_ALPHABET, USER_CODE_LEN)?;
    Ok(format_user_code(&chars))
}

/// The canonical form (`XXXX-XXXX`) of a user code as a person typed it: case, dashes and
/// whitespace do not matter. `None` if it cannot be a user code.
pub fn normalize_user_code(input: &str) -> Option<String> {
    let mut chars = String::with_capacity(USER_CODE_LEN);
    for c in input.chars() {
        if c == '-' || c.is_whitespace() {
            continue;
        }
        let c = c.to_ascii_uppercase();
        if chars.len() == USER_CODE_LEN || !c.is_ascii() || !USER_CODE_ALPHABET.contains(&(c as u8))
        {
            return None;
        }
        chars.push(c);
    }
    (chars.len() == USER_CODE_LEN).then(|| format_user_code(&chars))
}

/// `ABCDEFGH` -> `ABCD-EFGH` (ASCII input).
fn format_user_code(chars: &str) -> String {
    let (first, second) = chars.split_at(USER_CODE_LEN / 2);
    format!("{first}-{second}")
}

/// `N` bytes from the system CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|_| RandomError)?;
    Ok(bytes)
}

/// `len` characters drawn uniformly and independently from `alphabet` (ASCII, at most 256
/// symbols), by rejection sampling (see [`sample`]).
pub(crate) fn random_chars(alphabet: &[u8], len: usize) -> Result<String, RandomError> {
    let size = alphabet.len();
    if size == 0 || size > 256 {
        return Err(RandomError);
    }
    let mut out = String::with_capacity(len);
    let mut fruitless_rounds = 0;
    while out.len() < len {
        let batch: [u8; 64] = random_bytes()?;
        let before = out.len();
        for symbol in batch.into_iter().filter_map(|byte| sample(alphabet, byte)) {
            if out.len() == len {
                break;
            }
            out.push(char::from(symbol));
        }
        if out.len() == before {
            fruitless_rounds += 1;
            if fruitless_rounds == MAX_FRUITLESS_ROUNDS {
                return Err(RandomError);
            }
        }
    }
    Ok(out)
}

/// The symbol of `alphabet` that a uniformly random `byte` stands for, or `None` if the byte
/// must be rejected: only bytes below the largest multiple of the alphabet's size are used, so
/// that `byte % size` favours no symbol.
fn sample(alphabet: &[u8], byte: u8) -> Option<u8> {
    let size = alphabet.len();
    let byte = usize::from(byte);
    if size == 0 || byte >= 256 - 256 % size {
        return None;
    }
    alphabet.get(byte % size).copied()
}
