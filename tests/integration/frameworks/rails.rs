//! `identity.rails` against cookies made by Rails' own cookie jar and session store
//! (`rails_mint.rb`: ActionPack 6.1 from Debian bookworm, 7.2 from trixie) for each variant
//! Rails writes, and for each way one fails.

use super::*;

/// The app's `secret_key_base` (what `bin/rails secret` makes: 128 hex characters).
const SKB: &str = "3c1f9a0e7d2b4c6a8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f\
                   7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b";
/// Another app's.
const OTHER_SKB: &str = "0000000000000000000000000000000011111111111111111111111111111111";

fn mint_rails(case_args: &[&str]) -> String {
    let mut args = vec!["--secret-key-base", SKB];
    args.extend_from_slice(case_args);
    mint(Runtime::Ruby, "rails_mint.rb", &args)
}

/// An upstream serving [`PAGE`], and `{"id": "from-lookup"}` at `/whoami` — the lookup a
/// rejected Rails cookie must not fall through to.
async fn upstream_with_lookup() -> Upstream {
    spawn_upstream(|request| async move {
        match request.uri().path() {
            "/whoami" => respond(http::StatusCode::OK, "application/json", r#"{"id": "from-lookup"}"#),
            _ => html(PAGE),
        }
    })
    .await
}

/// The proxy with `identity.rails` (Devise's user id, written as a list; `user_name`), its
/// secret from `$SECRET_KEY_BASE`, and a lookup after it.
fn rails_proxy(upstream: SocketAddr) -> ProxyProcess {
    let rails = FrameworkYaml::rails("_shop_session", "${SECRET_KEY_BASE}")
        .user_id_claim_list(&["warden.user.user.key", "0", "0"])
        .user_name_claim("user_name");
    let lookup = LookupYaml::new("/whoami", &["_shop_session", "lookup_sid"]).user_id_claim("id");
    proxy(upstream, IdentityYaml::default().rails(rails).lookup(lookup), &[("SECRET_KEY_BASE", SKB)])
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_made_by_rails_identify_their_user() {
    let upstream = upstream_with_lookup().await;
    let mut proxy = rails_proxy(upstream.addr);
    let cases = [
        ("gcm-sha1-envelope", args(&["--user-id", "101", "--user-name", "alice"])), // Rails 6.0-6.1
        ("gcm-sha256-envelope", args(&["--rails", "7.2", "--kdf", "sha256", "--user-id", "102"])), // 7.0+
        ("gcm-bare", args(&["--envelope", "bare", "--user-id", "103"])),            // 5.2
        ("gcm-exp-only", args(&["--envelope", "bare", "--expires-in", "3600", "--user-id", "104"])), // 5.2 expire_after
        ("gcm-envelope-exp", args(&["--expires-in", "3600", "--user-id", "105"])),
        ("cbc-bare", args(&["--cipher", "aes-256-cbc", "--envelope", "bare", "--user-id", "106"])), // 4.1-5.1
        ("cbc-envelope", args(&["--cipher", "aes-256-cbc", "--user-id", "107"])),
        ("data-envelope", args(&["--rails", "7.2", "--kdf", "sha256", "--envelope", "data", "--user-id", "108"])),
        ("cbc-sha256", args(&["--rails", "7.2", "--kdf", "sha256", "--cipher", "aes-256-cbc", "--user-id", "109"])),
    ];
    let user_ids = ["101", "102", "103", "104", "105", "106", "107", "108", "109"];
    for ((case, cookie), user_id) in mint_all(&cases, mint_rails).into_iter().zip(user_ids) {
        let page = fetch(proxy.addr, "GET", &format!("/{case}"), &cookie, None).await;
        assert_page(&page, Some(user_id), case);
        assert_eq!(access(&mut proxy, &format!("/{case}")), ("verified".into(), "rails".into()), "{case}");
        if case == "gcm-sha1-envelope" {
            assert_eq!(widget_attribute(&page.text(), "user-name").as_deref(), Some("alice"));
            let again = fetch(proxy.addr, "GET", "/again", &cookie, None).await;
            assert_page(&again, Some(user_id), "the same session again");
            assert_eq!(access(&mut proxy, "/again"), ("verified:cached".into(), "rails".into()));
        }
    }
    assert!(upstream.seen().iter().all(|seen| seen.uri.path() != "/whoami"), "a Rails session is not looked up");
}

#[tokio::test(flavor = "multi_thread")]
async fn rails_cookies_that_fail_leave_the_visitor_anonymous_with_the_reason() {
    let upstream = upstream_with_lookup().await;
    let mut proxy = rails_proxy(upstream.addr);
    let cases = [
        ("tampered", args(&["--tamper"])),
        ("wrong-secret", args(&["--secret-key-base", OTHER_SKB])),
        ("cbc-tampered", args(&["--cipher", "aes-256-cbc", "--tamper"])),
        ("cbc-wrong-secret", args(&["--cipher", "aes-256-cbc", "--secret-key-base", OTHER_SKB])),
        ("wrong-purpose", args(&["--cookie", "other_session", "--present-as", "_shop_session"])),
        ("expired", args(&["--expires-in", "-60"])),
        ("marshal", args(&["--serializer", "marshal"])),
        ("cbc-marshal-bare", args(&["--serializer", "marshal", "--cipher", "aes-256-cbc", "--envelope", "bare"])),
        ("not-an-object", args(&["--raw-value", "[1,2]"])),
        // What Rails keeps for a visitor who has not signed in but saw a form.
        ("no-user", args(&["--no-user", "--data", r#"{"_csrf_token":"abc"}"#])),
    ];
    let outcomes = [
        "rejected:bad_signature",
        "rejected:bad_signature",
        "rejected:bad_signature",
        "rejected:bad_signature",
        "rejected:wrong_purpose",
        "rejected:expired",
        "rejected:unsupported_serializer",
        "rejected:unsupported_serializer",
        "rejected:not_an_object",
        "signed_out",
    ];
    for ((case, cookie), outcome) in mint_all(&cases, mint_rails).into_iter().zip(outcomes) {
        let page = fetch(proxy.addr, "GET", &format!("/{case}"), &cookie, None).await;
        assert_page(&page, None, case);
        assert_eq!(access(&mut proxy, &format!("/{case}")), (outcome.into(), "rails".into()), "{case}");
    }
    assert!(upstream.seen().iter().all(|seen| seen.uri.path() != "/whoami"), "a rejected session is not looked up");
    // The lookup behind is live: a request without a Rails session reaches it.
    let looked_up = fetch(proxy.addr, "GET", "/control", "lookup_sid=1", None).await;
    assert_page(&looked_up, Some("from-lookup"), "control");
    assert_eq!(access(&mut proxy, "/control"), ("verified".into(), "lookup".into()));
    let logs = proxy.logs().join("\n");
    assert!(!logs.contains(SKB) && !logs.contains("_shop_session="), "no secret or cookie in the logs:\n{logs}");
}
