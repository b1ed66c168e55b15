//! Model-name patterns: an exact name, or a glob where `*` matches any run of characters.
//!
//! Hand-written because model names are flat strings (no path separators, no character classes):
//! the glob crates are path-oriented and heavier than the twenty lines this takes.

/// A model name or a `*` glob over model names, e.g. `claude-sonnet-*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPattern(String);

impl ModelPattern {
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the pattern has no wildcard, so a match names the model exactly.
    pub fn is_exact(&self) -> bool {
        !self.0.contains('*')
    }

    /// How specific the pattern is: exact names beat globs, longer literal text beats shorter.
    pub fn specificity(&self) -> (bool, usize) {
        (self.is_exact(), self.0.chars().filter(|c| *c != '*').count())
    }

    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

/// Iterative glob match with single-star backtracking: linear in practice, never exponential.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

#[cfg(test)]
mod tests;
