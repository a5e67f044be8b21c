//! The token that control requests must carry.
//!
//! Anyone who can reach the page may watch it: everything it shows is readable through the
//! public API anyway. Changing the system (the load slider, delays, pausing consumers,
//! replaying or discarding dead letters) and reading a dead letter's body (which the public
//! listing leaves out) need the token, which `converge serve` prints in the
//! dashboard link as a URL fragment (`/dashboard#token=…`). A fragment never leaves the
//! browser in a request line, so it stays out of access logs and `Referer` headers; the page
//! sends it back in the [`TOKEN_HEADER`] header. A custom header also makes the browser ask
//! before sending a cross-site request, so another site open in the same browser cannot
//! drive the load even if it guesses the address.

use std::fmt;

/// The header control requests carry the token in.
pub const TOKEN_HEADER: &str = "x-dashboard-token";

/// Fewer characters than this could be guessed by trying: a generated token has 32.
pub const TOKEN_CHARS_MIN: usize = 16;

/// A token longer than this is a mistake (a pasted file), not a secret.
pub const TOKEN_CHARS_MAX: usize = 128;

/// The dashboard's control token. Its `Debug` leaves the value out, so that logging a
/// configuration never logs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A fresh random token: 122 random bits of a version-4 UUID, in hex.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// A token given by the user: [`TOKEN_CHARS_MIN`] to [`TOKEN_CHARS_MAX`] characters of
    /// `A-Z a-z 0-9 - _ . ~`, the characters a URL fragment carries unescaped.
    pub fn parse(s: &str) -> Result<Self, String> {
        let n = s.chars().count();
        if !(TOKEN_CHARS_MIN..=TOKEN_CHARS_MAX).contains(&n) {
            return Err(format!(
                "a dashboard token has {TOKEN_CHARS_MIN} to {TOKEN_CHARS_MAX} characters, this one {n}"
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~')))
        {
            return Err(format!(
                "a dashboard token may hold only letters, digits and - _ . ~, not {c:?}"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The value, to print in the dashboard link.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this token. Compares without returning early, so the time taken
    /// does not tell how much of a guess was right.
    pub fn matches(&self, given: &[u8]) -> bool {
        let want = self.0.as_bytes();
        want.len() == given.len()
            && want
                .iter()
                .zip(given)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

impl std::str::FromStr for Token {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_and_matches_only_itself() {
        let token = Token::generate();
        assert_eq!(Token::parse(token.expose()).as_ref(), Ok(&token));
        assert!(token.matches(token.expose().as_bytes()));
        assert!(!token.matches(b""));
        let mut wrong = token.expose().to_owned().into_bytes();
        wrong[0] ^= 1;
        assert!(!token.matches(&wrong));
        assert_ne!(Token::generate(), token);
    }

    #[test]
    fn short_long_or_odd_tokens_are_refused() {
        assert!(Token::parse("short").is_err());
        assert!(Token::parse(&"a".repeat(TOKEN_CHARS_MAX + 1)).is_err());
        assert!(Token::parse("sixteen-chars-ok").is_ok());
        assert!(Token::parse("sixteen chars no").is_err());
        assert!(Token::parse("with&ampersand-xx").is_err());
    }

    #[test]
    fn debug_hides_the_value() {
        let token = Token::parse("a-secret-nobody-logs").unwrap();
        assert!(!format!("{token:?}").contains("secret"));
    }
}
