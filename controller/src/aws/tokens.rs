//! Deterministic ClientTokens: the same (owner UID, step, attempt) always gives the same token,
//! so a create retried after a crash or a lost answer returns the first result instead of a
//! second resource. The attempt counter (kept in status) is bumped after
//! `IdempotentParameterMismatch` or an asynchronous failure (a token stays burned ~12 h).

use sha2::{Digest, Sha256};

/// AWS accepts at most 64 ASCII characters.
pub const MAX_CLIENT_TOKEN_LEN: usize = 64;

/// The lowercase hex SHA-256 (64 characters) of the owner UID, step and attempt.
pub fn client_token(owner_uid: &str, step: &str, attempt: u32) -> String {
    let mut hasher = Sha256::new();
    // Length-prefixed fields: ("ab", "c") and ("a", "bc") cannot collide.
    for field in ["ec2-reconciler/v1", owner_uid, step] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.update(attempt.to_be_bytes());
    let digest = hasher.finalize();
    let mut out = String::with_capacity(MAX_CLIENT_TOKEN_LEN);
    for byte in digest.iter() {
        out.push(hex_digit(byte >> 4));
        out.push(hex_digit(byte & 0x0f));
    }
    out
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_inputs_give_the_same_token() {
        assert_eq!(
            client_token("uid-1", "create", 0),
            client_token("uid-1", "create", 0)
        );
    }

    #[test]
    fn a_token_is_64_lowercase_hex_characters() {
        let t = client_token("0b9f6f4e-8c1d-4c55-9d1f-2e5a1b7c9d00", "create-volume", 3);
        assert_eq!(t.len(), MAX_CLIENT_TOKEN_LEN);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn the_token_changes_with_attempt_step_and_uid() {
        let base = client_token("uid-1", "create", 0);
        assert_ne!(base, client_token("uid-1", "create", 1));
        assert_ne!(base, client_token("uid-1", "copy", 0));
        assert_ne!(base, client_token("uid-2", "create", 0));
        assert_ne!(client_token("ab", "c", 0), client_token("a", "bc", 0));
    }
}
