//! `claims`, as written wherever it appears (`jwt`, `lookup`, `rails`, `flask`,
//! `cookie_session`): where the user's id, name and avatar are in a JSON document, as claim
//! paths — a dot path, or a list of keys and indexes for keys that hold dots.

use std::str::FromStr;

use serde::Deserialize;

use crate::config::value::NonEmpty;

/// `claims`: where the identity is in a JSON document (a token's payload, a lookup's answer,
/// a framework's session), as claim paths into nested objects and arrays: dot paths (`sub`,
/// `user.id`, `user.ids.0`), or lists of keys and indexes for keys that hold dots
/// (`[warden.user.user.key, 0, 0]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClaims {
    /// The user id (`user-id`): a string (at most 256 bytes, no control characters, none of
    /// `<>"'` and backtick) or an integer, written in decimal; anything else is
    /// `rejected:invalid_user_id`. Missing, null or empty: in a token `rejected:no_user_id`,
    /// in a lookup's answer or a framework's session not signed in (`signed_out`). The
    /// defaults are where Devise, Flask-Login and Passport keep it.
    /// Default: `sub` in `jwt`, `id` in `lookup`, `[warden.user.user.key, 0, 0]` in `rails`, `_user_id` in `flask`, `passport.user` in `cookie_session`.
    pub user_id: Option<ClaimPath>,
    /// The display name (`user-name`). Missing or unusable, it is left out; it never makes an
    /// identity invalid.
    /// Default: none.
    pub user_name: Option<ClaimPath>,
    /// An avatar URL (`user-avatar`); only an absolute `https://` URL is used. Missing or
    /// unusable, it is left out; it never makes an identity invalid.
    /// Default: none.
    pub user_avatar: Option<ClaimPath>,
}

/// Where a value is in a JSON document: keys of nested objects and indexes of arrays.
/// Written as a dot path (`sub`, `user.id`, `user.ids.0`) or, for keys that contain dots
/// (Devise's `warden.user.user.key`), as a YAML list of segments, keys and indexes:
/// `[warden.user.user.key, 0, 0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(pub Vec<String>);

impl FromStr for ClaimPath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let segments: Vec<String> = s.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!(
                "{s:?} is not a claim path like `sub` or `user.id` (a key with dots is written as a list: [a.b, c])"
            ));
        }
        Ok(ClaimPath(segments))
    }
}

/// The dot path, or the list form when a segment holds a dot.
impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.iter().any(|segment| segment.contains('.')) {
            write!(f, "[{}]", self.0.join(", "))
        } else {
            f.write_str(&self.0.join("."))
        }
    }
}

impl<'de> Deserialize<'de> for ClaimPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ClaimPathVisitor)
    }
}

/// A claim path as written: a dot path (a string), or a list of keys and indexes.
struct ClaimPathVisitor;

impl<'de> serde::de::Visitor<'de> for ClaimPathVisitor {
    type Value = ClaimPath;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a dot path like `user.id`, or a list of keys and indexes like [warden.user.user.key, 0, 0]")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ClaimPath, E> {
        crate::config::value::parse_expanded(s).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, index: u64) -> Result<ClaimPath, E> {
        Ok(ClaimPath(vec![index.to_string()]))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ClaimPath, A::Error> {
        let mut segments = Vec::new();
        while let Some(ClaimSegment(segment)) = seq.next_element()? {
            segments.push(segment);
        }
        if segments.is_empty() {
            return Err(serde::de::Error::custom("a claim path needs at least one key or index"));
        }
        Ok(ClaimPath(segments))
    }
}

/// One segment of a claim path written as a list: a key (any non-empty text, dots
/// included) or an array index.
struct ClaimSegment(String);

impl<'de> Deserialize<'de> for ClaimSegment {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SegmentVisitor;
        impl serde::de::Visitor<'_> for SegmentVisitor {
            type Value = ClaimSegment;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key (text) or an array index (a whole number from 0)")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ClaimSegment, E> {
                let key: NonEmpty = crate::config::value::parse_expanded(s).map_err(E::custom)?;
                Ok(ClaimSegment(key.0))
            }

            fn visit_u64<E: serde::de::Error>(self, index: u64) -> Result<ClaimSegment, E> {
                Ok(ClaimSegment(index.to_string()))
            }

            fn visit_i64<E: serde::de::Error>(self, index: i64) -> Result<ClaimSegment, E> {
                u64::try_from(index)
                    .map(|i| ClaimSegment(i.to_string()))
                    .map_err(|_| E::custom(format!("{index} is not an array index (a whole number from 0)")))
            }
        }
        deserializer.deserialize_any(SegmentVisitor)
    }
}

impl schemars::JsonSchema for ClaimPath {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ClaimPath".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "title": "claim path",
            "anyOf": [
                { "title": "dot path", "type": "string" },
                {
                    "title": "list of keys and indexes",
                    "type": "array",
                    "minItems": 1,
                    "items": { "anyOf": [{ "type": "string" }, { "type": "integer", "minimum": 0 }] }
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_paths_split_on_dots() {
        assert_eq!("user.ids.0".parse::<ClaimPath>().unwrap().0, ["user", "ids", "0"]);
        assert!("user..id".parse::<ClaimPath>().is_err());
    }
}
