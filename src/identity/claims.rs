//! Reading a person out of JSON — a token's payload or a lookup's answer — by the
//! configured dot paths, and what a user id, a name and an avatar may be.

use serde_json::Value;

use crate::config::{ClaimPath, Claims};
use crate::outcome::Rejection;

/// The longest user id accepted, in bytes.
const MAX_USER_ID_BYTES: usize = 256;

/// Who a token or a lookup says the visitor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Person {
    pub user_id: String,
    pub user_name: Option<String>,
    /// Only ever an absolute `https://` URL.
    pub user_avatar: Option<String>,
}

/// The person in `payload`. The id is required; a name or avatar that is missing or unfit
/// is left out, never a reason to refuse the id.
pub(super) fn person(payload: &Value, claims: &Claims) -> Result<Person, Rejection> {
    let user_id = user_id_text(claim(payload, &claims.user_id).ok_or(Rejection::NoUserId)?)?;
    let text = |path: &Option<ClaimPath>| path.as_ref().and_then(|p| claim(payload, p)).and_then(Value::as_str);
    Ok(Person {
        user_id,
        user_name: text(&claims.user_name).filter(|n| !n.is_empty()).map(str::to_owned),
        user_avatar: text(&claims.user_avatar).filter(|a| is_https_url(a)).map(str::to_owned),
    })
}

/// The person that texts read elsewhere (a page's elements, a gateway's headers) name, by
/// the same rules: an empty id is none, an id that does not look like one is refused; a
/// name or avatar that is missing or unfit is left out.
pub(super) fn person_from_text(
    user_id: Option<&str>,
    user_name: Option<&str>,
    user_avatar: Option<&str>,
) -> Result<Person, Rejection> {
    let user_id = match user_id {
        None | Some("") => return Err(Rejection::NoUserId),
        Some(id) if is_plain_id(id) => id.to_owned(),
        Some(_) => return Err(Rejection::InvalidUserId),
    };
    Ok(Person {
        user_id,
        user_name: user_name.filter(|n| !n.is_empty()).map(str::to_owned),
        user_avatar: user_avatar.filter(|a| is_https_url(a)).map(str::to_owned),
    })
}

/// Follows a dot path through objects (by key) and arrays (by index).
pub(super) fn claim<'a>(payload: &'a Value, path: &ClaimPath) -> Option<&'a Value> {
    path.0.iter().try_fold(payload, |value, segment| match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// A user id is a string or an integer (written in decimal). An empty or `null` one means
/// there is none. A string must look like an identifier: at most 256 bytes, no control
/// characters and no markup characters (`<>"'` and backtick) — anything else is a forged
/// or broken answer, not someone's id.
fn user_id_text(value: &Value) -> Result<String, Rejection> {
    match value {
        Value::Null => Err(Rejection::NoUserId),
        Value::String(s) if s.is_empty() => Err(Rejection::NoUserId),
        Value::String(s) if is_plain_id(s) => Ok(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        _ => Err(Rejection::InvalidUserId),
    }
}

fn is_plain_id(id: &str) -> bool {
    id.len() <= MAX_USER_ID_BYTES && !id.chars().any(|c| c.is_control() || matches!(c, '<' | '>' | '"' | '\'' | '`'))
}

fn is_https_url(candidate: &str) -> bool {
    candidate.starts_with("https://")
        && candidate.parse::<http::Uri>().is_ok_and(|u| u.host().is_some_and(|h| !h.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> ClaimPath {
        p.parse().unwrap()
    }

    #[test]
    fn claim_paths_reach_into_objects_and_arrays() {
        let payload = json!({"sub": 7, "user": {"ids": ["u-1", "u-2"], "name": "Ada"}});
        assert_eq!(claim(&payload, &path("user.ids.1")), Some(&json!("u-2")));
        assert_eq!(claim(&payload, &path("user.name.x")), None);
        assert_eq!(user_id_text(claim(&payload, &path("sub")).unwrap()), Ok("7".into()));
    }

    #[test]
    fn user_ids_are_strings_or_integers_that_look_like_ids() {
        assert_eq!(user_id_text(&json!("auth0|5f7c8ec7c33c6c004bbafe82")), Ok("auth0|5f7c8ec7c33c6c004bbafe82".into()));
        assert_eq!(user_id_text(&json!("zoë@example.com")), Ok("zoë@example.com".into()));
        assert_eq!(user_id_text(&json!(-3)), Ok("-3".into()));
        assert_eq!(user_id_text(&json!(1.5)), Err(Rejection::InvalidUserId));
        assert_eq!(user_id_text(&json!({"id": 1})), Err(Rejection::InvalidUserId));
        assert_eq!(user_id_text(&json!(true)), Err(Rejection::InvalidUserId));
        assert_eq!(user_id_text(&json!("\"><script>alert(1)</script>")), Err(Rejection::InvalidUserId));
        assert_eq!(user_id_text(&json!("a\nb")), Err(Rejection::InvalidUserId));
        assert_eq!(user_id_text(&json!("x".repeat(257))), Err(Rejection::InvalidUserId));
        assert_eq!(user_id_text(&json!("")), Err(Rejection::NoUserId));
        assert_eq!(user_id_text(&json!(null)), Err(Rejection::NoUserId));
    }

    #[test]
    fn names_and_avatars_never_refuse_an_id() {
        let claims = Claims { user_id: path("id"), user_name: Some(path("name")), user_avatar: Some(path("pic")) };
        let payload = json!({"id": "u1", "name": 5, "pic": "http://cdn.example/a.png"});
        let person = person(&payload, &claims).unwrap();
        assert_eq!((person.user_name, person.user_avatar), (None, None));
    }

    #[test]
    fn texts_follow_the_same_rules_as_claims() {
        let person = person_from_text(Some("u-7"), Some("Ada"), Some("http://cdn/a.png")).unwrap();
        assert_eq!(
            (person.user_id.as_str(), person.user_name.as_deref(), person.user_avatar),
            ("u-7", Some("Ada"), None)
        );
        assert_eq!(person_from_text(Some(""), None, None), Err(Rejection::NoUserId));
        assert_eq!(person_from_text(None, Some("Ada"), None), Err(Rejection::NoUserId));
        assert_eq!(person_from_text(Some("<b>x</b>"), None, None), Err(Rejection::InvalidUserId));
        assert_eq!(person_from_text(Some(&"x".repeat(257)), None, None), Err(Rejection::InvalidUserId));
    }

    #[test]
    fn only_https_avatars_are_kept() {
        assert!(is_https_url("https://cdn.example/a.png"));
        assert!(!is_https_url("http://cdn.example/a.png"));
        assert!(!is_https_url("javascript:alert(1)"));
        assert!(!is_https_url("https://"));
    }
}
