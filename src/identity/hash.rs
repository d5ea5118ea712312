//! The `user-hash`: lowercase hex HMAC-SHA256 of the user id (UTF-8), keyed with the
//! assistant's secret key (UTF-8), as the widget checks it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Visitor;
use super::claims::Person;

/// The HMAC state with the assistant's secret key already absorbed; cloned per hash.
#[derive(Clone)]
pub(super) struct UserHasher(Hmac<Sha256>);

impl UserHasher {
    pub(super) fn new(secret_key: &str) -> Self {
        UserHasher(hmac_for(secret_key))
    }

    fn hash(&self, user_id: &str) -> String {
        hash_with(self.0.clone(), user_id)
    }

    /// The visitor `person` is, with their hash.
    pub(super) fn visitor(&self, person: Person) -> Visitor {
        Visitor {
            user_hash: self.hash(&person.user_id),
            user_id: person.user_id,
            user_name: person.user_name,
            user_avatar: person.user_avatar,
        }
    }
}

/// `user-hash`: lowercase hex HMAC-SHA256 of `user_id` (UTF-8) keyed with `secret_key` (UTF-8).
pub fn user_hash(secret_key: &str, user_id: &str) -> String {
    hash_with(hmac_for(secret_key), user_id)
}

fn hash_with(mut mac: Hmac<Sha256>, user_id: &str) -> String {
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn hmac_for(secret_key: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length (RFC 2104 §3), so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret_key.as_bytes()).unwrap_or_else(|_| unreachable!())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_hash_matches_the_published_vectors() {
        assert_eq!(
            user_hash("sk_test_123", "user_42"),
            "45bb144b8ebbe9876600b63739423f010f4ea3d43771ea3fee1329d463683b59"
        );
        assert_eq!(
            user_hash("sk_test_123", "Zoë-7"),
            "04a33c483382739aca1dc954e79aac17831e5595be959c9dbe91cec509dcc2b5"
        );
    }
}
