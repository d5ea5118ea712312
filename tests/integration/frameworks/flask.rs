//! `identity.flask` against cookies made by Flask's own session interface
//! (`flask_mint.py`: Flask 3.1 and Flask-Login from PyPI), and a real Flask-Login app
//! behind the proxy, signed in and out through its own form.

use std::time::{SystemTime, UNIX_EPOCH};

use super::*;

/// The app's `SECRET_KEY`.
const FLASK_KEY: &str = "flask-integration-secret-0123456789";

fn mint_flask(case_args: &[&str]) -> String {
    let mut args = vec!["--secret-key", FLASK_KEY];
    args.extend_from_slice(case_args);
    mint(Runtime::Python, "flask_mint.py", &args)
}

/// The proxy with `identity.flask` (Flask's defaults: cookie `session`, 31 days,
/// Flask-Login's `_user_id`), its secret from `$FLASK_SECRET_KEY`.
fn flask_proxy(upstream: SocketAddr) -> ProxyProcess {
    let flask = FrameworkYaml::flask("${FLASK_SECRET_KEY}");
    proxy(upstream, IdentityYaml::default().flask(flask), &[("FLASK_SECRET_KEY", FLASK_KEY)])
}

fn seconds_from_now(offset: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    now.checked_add_signed(offset).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_made_by_flask_identify_or_fail_with_the_reason() {
    let upstream = spawn_html_upstream(PAGE).await;
    let mut proxy = flask_proxy(upstream.addr);
    let (long_ago, ahead) = (seconds_from_now(-32 * 86_400), seconds_from_now(3600));
    let cases = [
        ("login-compressed", args(&["--user-id", "201"])), // Flask-Login's log-in: zlib-compressed
        ("plain", args(&["--mode", "session", "--user-id", "202"])),
        ("tampered", args(&["--user-id", "203", "--tamper"])),
        ("wrong-secret", args(&["--user-id", "204", "--signing-key", "another-app-secret"])),
        ("expired", args(&["--user-id", "205", "--issued-at", &long_ago])),
        ("signed-in-the-future", args(&["--user-id", "206", "--issued-at", &ahead])),
        ("not-an-object", args(&["--mode", "payload", "--data", "[1,2]"])),
        ("no-user", args(&["--mode", "session", "--data", r#"{"csrf_token":"abc"}"#])),
    ];
    let expected = [
        (Some("201"), "verified"),
        (Some("202"), "verified"),
        (None, "rejected:bad_signature"),
        (None, "rejected:bad_signature"),
        (None, "rejected:expired"),
        (None, "rejected:expired"),
        (None, "rejected:not_an_object"),
        (None, "signed_out"),
    ];
    for ((case, cookie), (user_id, outcome)) in mint_all(&cases, mint_flask).into_iter().zip(expected) {
        match case {
            "login-compressed" => assert!(cookie.starts_with("session=."), "compressed: {cookie}"),
            "plain" => assert!(!cookie.starts_with("session=."), "not compressed: {cookie}"),
            _ => {}
        }
        let page = fetch(proxy.addr, "GET", &format!("/{case}"), &cookie, None).await;
        assert_page(&page, user_id, case);
        assert_eq!(access(&mut proxy, &format!("/{case}")), (outcome.into(), "flask".into()), "{case}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flask_login_app_behind_the_proxy_signs_in_and_out_through_its_form() {
    let app = App::start(Runtime::Python, "flask_app.py", &["--secret-key", FLASK_KEY]);
    let mut proxy = flask_proxy(app.addr);
    let mut jar = Jar::default();

    let home = fetch(proxy.addr, "GET", "/", "", None).await;
    assert_page(&home, None, "before signing in");
    assert!(home.text().contains("Not signed in"), "{}", home.text());
    assert_eq!(access_nth(&mut proxy, "/", 0), ("none".into(), "-".into()));

    let login = fetch(proxy.addr, "GET", "/login", "", None).await;
    let (action, inputs) = form_of(&login.text());
    assert_eq!(inputs, ["user", "password"], "the app's own form");
    let form = format!("{}=alice&{}=wonderland", inputs[0], inputs[1]);
    let signed_in = fetch(proxy.addr, "POST", &action, &jar.header(), Some(&form)).await;
    assert_eq!(signed_in.status, http::StatusCode::SEE_OTHER, "{}", signed_in.text());
    jar.absorb(&signed_in.headers);
    assert!(jar.header().starts_with("session=."), "Flask-Login's session: {}", jar.header());

    let home = fetch(proxy.addr, "GET", "/", &jar.header(), None).await;
    assert!(home.text().contains("Signed in as alice"), "the app knows alice: {}", home.text());
    assert_page(&home, Some("1"), "signed in");
    assert_eq!(access_nth(&mut proxy, "/", 1), ("verified".into(), "flask".into()));

    let signed_out = fetch(proxy.addr, "POST", "/logout", &jar.header(), None).await;
    assert_eq!(signed_out.status, http::StatusCode::SEE_OTHER);
    jar.absorb(&signed_out.headers);
    let home = fetch(proxy.addr, "GET", "/", &jar.header(), None).await;
    assert!(home.text().contains("Not signed in"), "{}", home.text());
    assert_page(&home, None, "signed out");
    assert_eq!(access_nth(&mut proxy, "/", 2), ("none".into(), "-".into()), "Flask deleted the session");
}
