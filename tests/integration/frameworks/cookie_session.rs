//! `identity.cookie_session` against cookies made by cookie-session's own code
//! (`express_mint.js`: express, cookie-session, cookies and keygrip from npm), and a real
//! Express app with cookie-session behind the proxy, signed in and out through its form.

use super::*;

/// The app's keys: today's first, the one it replaced second.
const NEW_KEY: &str = "express-integration-key-new-0123";
const OLD_KEY: &str = "express-integration-key-old-4567";

fn mint_cookie_session(case_args: &[&str]) -> String {
    mint(Runtime::Node, "express_mint.js", case_args)
}

/// The proxy with `identity.cookie_session` (cookie `session`, Passport's `passport.user`),
/// its keys from the environment.
fn cookie_session_proxy(upstream: SocketAddr) -> ProxyProcess {
    let cookie_session = FrameworkYaml::cookie_session(&["${COOKIE_KEY_NEW}", "${COOKIE_KEY_OLD}"]);
    let envs = [("COOKIE_KEY_NEW", NEW_KEY), ("COOKIE_KEY_OLD", OLD_KEY)];
    proxy(upstream, IdentityYaml::default().cookie_session(cookie_session), &envs)
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_made_by_cookie_session_identify_or_fail_with_the_reason() {
    let upstream = spawn_html_upstream(PAGE).await;
    let mut proxy = cookie_session_proxy(upstream.addr);
    let both = format!("{NEW_KEY},{OLD_KEY}");
    let cases = [
        ("first-key", args(&["--keys", &both, "--user-id", "301"])),
        // Made by the app before its keys were rotated: signed with today's second key.
        ("second-key", args(&["--keys", OLD_KEY, "--user-id", "302"])),
        ("missing-sig", args(&["--keys", &both, "--user-id", "303", "--no-sig"])),
        ("foreign-key", args(&["--keys", "some-other-apps-key", "--user-id", "304"])),
        ("tampered", args(&["--keys", &both, "--user-id", "305", "--tamper"])),
        ("not-an-object", args(&["--keys", &both, "--mode", "payload", "--data", "[1,2]"])),
        ("no-user", args(&["--keys", &both, "--mode", "session", "--data", r#"{"views":3}"#])),
    ];
    let expected = [
        (Some("301"), "verified"),
        (Some("302"), "verified"),
        (None, "rejected:bad_signature"),
        (None, "rejected:bad_signature"),
        (None, "rejected:bad_signature"),
        (None, "rejected:not_an_object"),
        (None, "signed_out"),
    ];
    for ((case, cookie), (user_id, outcome)) in mint_all(&cases, mint_cookie_session).into_iter().zip(expected) {
        let page = fetch(proxy.addr, "GET", &format!("/{case}"), &cookie, None).await;
        assert_page(&page, user_id, case);
        assert_eq!(access(&mut proxy, &format!("/{case}")), (outcome.into(), "cookie_session".into()), "{case}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_express_app_with_cookie_session_behind_the_proxy_signs_in_and_out_through_its_form() {
    let app = App::start(Runtime::Node, "express_app.js", &["--keys", &format!("{NEW_KEY},{OLD_KEY}")]);
    let mut proxy = cookie_session_proxy(app.addr);
    let mut jar = Jar::default();

    let home = fetch(proxy.addr, "GET", "/", "", None).await;
    assert_page(&home, None, "before signing in");
    assert_eq!(access_nth(&mut proxy, "/", 0), ("none".into(), "-".into()));

    let login = fetch(proxy.addr, "GET", "/login", "", None).await;
    let (action, inputs) = form_of(&login.text());
    assert_eq!(inputs, ["user", "password"], "the app's own form");
    let form = format!("{}=bob&{}=builder", inputs[0], inputs[1]);
    let signed_in = fetch(proxy.addr, "POST", &action, &jar.header(), Some(&form)).await;
    assert_eq!(signed_in.status, http::StatusCode::SEE_OTHER, "{}", signed_in.text());
    jar.absorb(&signed_in.headers);
    assert!(jar.header().contains("session.sig="), "cookie-session's two cookies: {}", jar.header());

    let home = fetch(proxy.addr, "GET", "/", &jar.header(), None).await;
    assert!(home.text().contains("Signed in as bob"), "the app knows bob: {}", home.text());
    assert_page(&home, Some("2"), "signed in");
    assert_eq!(access_nth(&mut proxy, "/", 1), ("verified".into(), "cookie_session".into()));

    let signed_out = fetch(proxy.addr, "POST", "/logout", &jar.header(), None).await;
    assert_eq!(signed_out.status, http::StatusCode::SEE_OTHER);
    jar.absorb(&signed_out.headers);
    assert_eq!(jar.header(), "", "cookie-session cleared both cookies");
    let home = fetch(proxy.addr, "GET", "/", &jar.header(), None).await;
    assert!(home.text().contains("Not signed in"), "{}", home.text());
    assert_page(&home, None, "signed out");
    assert_eq!(access_nth(&mut proxy, "/", 2), ("none".into(), "-".into()));
}
