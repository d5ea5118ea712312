//! Framework sessions through the real proxy in every `cargo test`, without the frameworks
//! installed: the cookies of `tests/frameworks/vectors.json` (made by Rails, Flask and
//! cookie-session themselves when the vectors were written) identify their visitor, and
//! the failing ones leave the page anonymous with the reason in the metrics. The suite
//! that mints fresh cookies with each framework's own code is `frameworks::`
//! (`--features framework-tests`).

use invent_proxy::RunningProxy;
use invent_proxy::identity::user_hash;
use serde_json::Value;

use crate::operations::scrape_until;
use crate::support::*;

const PAGE: &str = "<!DOCTYPE html><html><body><p>Orders</p></body></html>";

/// The vector named `id`: its `Cookie` header and the secret it was made with.
pub fn vector(id: &str) -> (String, Value) {
    let vectors: Value = serde_json::from_str(include_str!("../frameworks/vectors.json")).unwrap();
    let found = vectors["vectors"].as_array().unwrap().iter().find(|v| v["id"] == id).unwrap().clone();
    (found["cookie_header"].as_str().unwrap().to_owned(), found["config"].clone())
}

/// `identity` with the Rails and Flask blocks, with the vectors' secrets (cookie-session
/// and Flask both name their cookie `session`: a site has one or the other).
pub fn rails_and_flask() -> IdentityYaml {
    let (_, rails) = vector("rails-gcm-sha256-envelope");
    let skb = rails["secret_key_base"].as_str().unwrap();
    IdentityYaml::default()
        .rails(FrameworkYaml::rails("_shop_session", skb).user_id_claim_list(&["warden.user.user.key", "0", "0"]))
        // The Flask vectors were signed on 2026-01-01: a max_age that keeps them valid.
        .flask(FrameworkYaml::flask("flask-vector-secret-key").max_age("36500d").user_id_claim("_user_id"))
}

fn cookie_session() -> IdentityYaml {
    let keys = FrameworkYaml::cookie_session(&["cookie-key-new", "cookie-key-old"]);
    IdentityYaml::default().cookie_session(keys.user_id_claim("passport.user"))
}

#[tokio::test]
async fn framework_cookies_identify_their_visitor_and_failing_ones_are_anonymous_with_the_reason() {
    let upstream = spawn_html_upstream(PAGE).await;
    for (identity, is_cookie_session) in [(rails_and_flask(), false), (cookie_session(), true)] {
        let proxy = spawn_proxy(ProxyYaml::new(upstream.addr).admin().identity(identity)).await;
        check_vectors(&proxy, is_cookie_session).await;
        proxy.shutdown().await;
    }
}

/// Each vector of a framework the proxy reads: identified, or anonymous with its reason.
async fn check_vectors(proxy: &RunningProxy, is_cookie_session: bool) {
    let admin = proxy.admin_addr().unwrap();
    let reads = |id: &str| id.starts_with("cs-") == is_cookie_session;
    let verified = [
        ("rails-gcm-sha256-envelope", "102"),
        ("rails-gcm-sha1-envelope", "101"),
        ("rails-cbc-sha1-bare", "106"),
        ("flask-login-compressed", "201"),
        ("flask-plain", "202"),
        ("cs-second-key", "302"),
    ];
    for (id, user_id) in verified.into_iter().filter(|(id, _)| reads(id)) {
        let page = get_with(proxy, "/", &[("cookie", &vector(id).0)]).await;
        assert_eq!(page.widgets(), 1, "{id}");
        assert_eq!(widget_attribute(&page.text(), "user-id").as_deref(), Some(user_id), "{id}");
        assert_eq!(widget_attribute(&page.text(), "user-hash"), Some(user_hash(SECRET_KEY, user_id)), "{id}");
    }
    let rejected = [
        ("rails-marshal", "rails", "unsupported_serializer"),
        ("rails-wrong-purpose", "rails", "wrong_purpose"),
        ("rails-tampered", "rails", "bad_signature"),
        ("flask-not-an-object", "flask", "not_an_object"),
        ("cs-missing-sig", "cookie_session", "bad_signature"),
    ];
    for (id, source, reason) in rejected.into_iter().filter(|(id, ..)| reads(id)) {
        let page = get_with(proxy, "/", &[("cookie", &vector(id).0)]).await;
        assert_eq!((page.widgets(), widget_attribute(&page.text(), "user-id")), (1, None), "{id}: served, anonymous");
        let line =
            format!(r#"invent_proxy_identity_total{{outcome="rejected",source="{source}",reason="{reason}"}} 1"#);
        scrape_until(admin, &line).await;
    }
}
