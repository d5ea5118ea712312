//! Config errors name the key, the line and the column, and say what is wrong.

use std::path::Path;

use invent_proxy::Config;

fn error(yaml: &str) -> String {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    Config::from_yaml(yaml, "proxy.yaml", &fixtures).unwrap_err().to_string()
}

const BASE: &str = "upstream:\n  url: http://127.0.0.1:3000\nassistant:\n  id: ast_1\n";

#[test]
fn unknown_keys_are_errors_with_line_and_column() {
    assert_eq!(
        error(&format!("{BASE}inject:\n  postion: head_end\n")),
        "proxy.yaml:6:3: inject.postion: unknown field `postion`, expected one of position, include_paths, exclude_paths, csp_allow, turbo_permanent"
    );
    assert!(error(&format!("{BASE}listn: 0.0.0.0:80\n")).starts_with("proxy.yaml:5:1: listn: unknown field `listn`"));
}

#[test]
fn malformed_values_name_their_key() {
    let bad_duration = error("upstream:\n  url: http://127.0.0.1:3000\n  connect_timeout: 5\nassistant:\n  id: a\n");
    assert!(
        bad_duration.starts_with("proxy.yaml:3:20: upstream.connect_timeout: invalid duration \"5\""),
        "{bad_duration}"
    );
    let bad_addr = error(&format!("listen: localhost\n{BASE}"));
    assert!(bad_addr.starts_with("proxy.yaml:1:9: listen: "), "{bad_addr}");
    let bad_url = error("upstream:\n  url: 127.0.0.1:3000\nassistant:\n  id: a\n");
    assert!(bad_url.contains("upstream.url: ") && bad_url.contains("http://"), "{bad_url}");
    let bad_enum = error(&format!("{BASE}inject:\n  position: middle\n"));
    assert!(
        bad_enum.contains("inject.position: unknown value \"middle\"; expected one of: body_end, head_end"),
        "{bad_enum}"
    );
    let empty_id = error("upstream:\n  url: http://127.0.0.1:3000\nassistant:\n  id: \"\"\n");
    assert!(empty_id.contains("assistant.id: must not be empty"), "{empty_id}");
    assert!(error("upstream:\n  url: http://x\n").contains("missing field `assistant`"));
    assert!(error("").contains("the config is empty"));
}

#[test]
fn a_value_of_the_wrong_kind_says_what_was_expected_and_what_is_there() {
    assert_eq!(
        error(&format!("{BASE}limits:\n  max_connections: lots\n")),
        "proxy.yaml:6:20: limits.max_connections: expected a whole number, got \"lots\""
    );
    assert_eq!(
        error(&format!("{BASE}limits: {{ max_connections: -3, workers: 2 }}\n")),
        "proxy.yaml:5:28: limits.max_connections: expected a whole number, got \"-3\""
    );
    assert_eq!(
        error(&format!("{BASE}limits:\n  max_connections: \"1.5\"  # quoted\n")),
        "proxy.yaml:6:20: limits.max_connections: expected a whole number, got \"1.5\""
    );
    assert_eq!(
        error(&format!("{BASE}limits:\n  workers: 99999999999999999999\n")),
        "proxy.yaml:6:12: limits.workers: expected a whole number up to 18446744073709551615, got \"99999999999999999999\""
    );
    assert_eq!(
        error(&format!("{BASE}underscores_in_headers: maybe\n")),
        "proxy.yaml:5:25: underscores_in_headers: expected true or false, got \"maybe\""
    );
}

#[test]
fn an_unset_environment_variable_is_named() {
    let yaml = format!(
        "{BASE}identity:\n  secret_key: ${{INVENT_TEST_DEFINITELY_UNSET}}\n  jwt:\n    cookie: s\n    secret: x\n"
    );
    let message = error(&yaml);
    assert!(
        message.starts_with(
            "proxy.yaml:6:15: identity.secret_key: environment variable `INVENT_TEST_DEFINITELY_UNSET` is not set"
        ),
        "{message}"
    );
}

#[test]
fn key_problems_name_the_key_and_line() {
    let missing_file = format!(
        "{BASE}identity:\n  secret_key: k\n  jwt:\n    cookie: s\n    algorithms: [RS256]\n    public_key_file: keys/nope.pem\n"
    );
    let message = error(&missing_file);
    assert!(message.starts_with("proxy.yaml:10:22: identity.jwt.public_key_file: cannot read "), "{message}");
    let wrong_kind = format!(
        "{BASE}identity:\n  secret_key: k\n  jwt:\n    cookie: s\n    algorithms: [RS256]\n    public_key_file: keys/ec_public.pem\n"
    );
    assert!(error(&wrong_kind).contains("is not a PEM RSA public key"), "{}", error(&wrong_kind));
    let no_secret = format!("{BASE}identity:\n  secret_key: k\n  jwt:\n    cookie: s\n    algorithms: [HS256]\n");
    assert!(
        error(&no_secret).contains("identity.jwt.secret: HS256/HS384/HS512 need `secret`"),
        "{}",
        error(&no_secret)
    );
    let mixed = format!(
        "{BASE}identity:\n  secret_key: k\n  jwt:\n    cookie: s\n    algorithms: [HS256, RS256]\n    secret: x\n"
    );
    assert!(
        error(&mixed).contains("identity.jwt.algorithms: all algorithms must use the same key"),
        "{}",
        error(&mixed)
    );
    let none =
        format!("{BASE}identity:\n  secret_key: k\n  jwt:\n    cookie: s\n    algorithms: [none]\n    secret: x\n");
    assert!(error(&none).contains("unknown algorithm \"none\""), "{}", error(&none));
}

#[test]
fn errors_never_echo_secrets() {
    let yaml = format!(
        "{BASE}identity:\n  secret_key: sk_live_supersecret\n  jwt:\n    cookie: s\n    algorithms: [HS256]\n    secret: jwt_supersecret\n    leeway: soon\n"
    );
    let message = error(&yaml);
    assert!(message.contains("identity.jwt.leeway"), "{message}");
    assert!(!message.contains("supersecret"), "{message}");
}

#[test]
fn values_that_would_fail_every_request_are_refused() {
    let zero = error("upstream:\n  url: http://127.0.0.1:3000\n  response_timeout: 0s\nassistant:\n  id: a\n");
    assert!(zero.contains("upstream.response_timeout: must be more than 0"), "{zero}");
    let no_paths = error(&format!("{BASE}inject:\n  include_paths: []\n"));
    assert!(no_paths.contains("inject.include_paths: lists no path"), "{no_paths}");
    let identity = |leeway: &str| {
        format!("{BASE}identity:\n  secret_key: k\n  jwt:\n    cookie: s\n    secret: x\n    leeway: {leeway}\n")
    };
    assert!(error(&identity("500ms")).contains("identity.jwt.leeway: JWT times are in whole seconds"));
    assert!(error(&identity("100y")).contains("identity.jwt.leeway: at most 1h"));
    let bad_listen = error(&format!("listen: localhost\n{BASE}"));
    assert!(bad_listen.contains("write IP:PORT, e.g. 0.0.0.0:8080"), "{bad_listen}");
}

#[test]
fn a_private_key_is_never_accepted_as_the_verification_key() {
    let yaml = format!(
        "{BASE}identity:\n  secret_key: k\n  jwt:\n    cookie: s\n    algorithms: [RS256]\n    public_key_file: keys/rsa_private.pem\n"
    );
    let message = error(&yaml);
    assert!(message.starts_with("proxy.yaml:10:22: identity.jwt.public_key_file: "), "{message}");
    assert!(message.contains("holds a private key; give the proxy only the public key"), "{message}");
}

#[test]
fn a_variable_written_without_braces_is_refused_for_secrets() {
    let yaml = format!("{BASE}identity:\n  secret_key: $INVENT_SECRET_KEY\n  jwt:\n    cookie: s\n    secret: x\n");
    let message = error(&yaml);
    assert!(message.contains("identity.secret_key: `$INVENT_SECRET_KEY` is not expanded; write an environment variable as `${INVENT_SECRET_KEY}`"), "{message}");
}

#[test]
fn every_unset_variable_is_named_at_once() {
    let yaml = format!(
        "{BASE}identity:\n  secret_key: ${{INVENT_TEST_UNSET_A}}\n  jwt:\n    cookie: s\n    # secret: ${{INVENT_TEST_UNSET_COMMENTED}}\n    secret: ${{INVENT_TEST_UNSET_B}}\n"
    );
    let message = error(&yaml);
    assert_eq!(
        message,
        "proxy.yaml:6:1: environment variables `INVENT_TEST_UNSET_A` (line 6), `INVENT_TEST_UNSET_B` (line 10) are not set"
    );
}

#[test]
fn expanded_values_are_never_quoted_in_errors() {
    // Cargo sets CARGO_PKG_NAME for the test process: it stands in for a password here.
    let yaml = "upstream:\n  url: http://admin:${CARGO_PKG_NAME}@127.0.0.1:3000\nassistant:\n  id: a\n";
    let message = error(yaml);
    assert!(
        message.contains("\"http://admin:${CARGO_PKG_NAME}@127.0.0.1:3000\" must not carry credentials"),
        "{message}"
    );
    assert!(!message.contains(&std::env::var("CARGO_PKG_NAME").unwrap()), "{message}");
}

#[test]
fn key_paths_read_like_the_yaml() {
    let yaml = format!(
        "{BASE}identity:\n  secret_key: k\n  jwt:\n    cookie: s\n    secret: x\n    algorithms: [HS256, XS1]\n"
    );
    let message = error(&yaml);
    assert!(message.contains("identity.jwt.algorithms[1]: unknown algorithm \"XS1\""), "{message}");
    let indentation =
        error("upstream:\n    url: http://127.0.0.1:3000\n  host_header: upstream\nassistant:\n  id: a\n");
    assert!(
        indentation.starts_with("proxy.yaml:3:3: ") && indentation.contains("check the indentation"),
        "{indentation}"
    );
}

#[test]
fn identity_sources_are_checked_at_load() {
    let identity = |body: &str| error(&format!("{BASE}identity:\n  secret_key: k\n{body}"));
    let none = identity("");
    assert!(none.contains("identity: say how visitors are recognised: `gateway`"), "{none}");
    let two_keys = identity("  jwt:\n    cookie: s\n    secret: x\n    jwks_url: https://auth.example/jwks.json\n");
    assert!(two_keys.starts_with("proxy.yaml:10:15: identity.jwt.jwks_url: set one of"), "{two_keys}");
    let no_algorithms = identity("  jwt:\n    cookie: s\n    jwks_url: https://auth.example/jwks.json\n");
    assert!(no_algorithms.contains("identity.jwt.algorithms: list the algorithms the key set verifies"));
    let stray = identity("  jwt:\n    cookie: s\n    secret: x\n    jwks_refresh: 5m\n");
    assert!(stray.contains("identity.jwt: ") && stray.contains("go with `jwks_url`"), "{stray}");
    let relative = identity("  jwt:\n    cookie: s\n    algorithms: [RS256]\n    jwks_url: /jwks.json\n");
    assert!(relative.contains("identity.jwt.jwks_url: ") && relative.contains("needs a scheme"), "{relative}");
    let no_cookies = identity("  lookup:\n    url: /whoami\n    cookies: []\n");
    assert!(no_cookies.starts_with("proxy.yaml:9:14: identity.lookup.cookies: lists no cookie"), "{no_cookies}");
    let bad_url = identity("  lookup:\n    url: whoami\n    cookies: [sid]\n");
    assert!(bad_url.contains("identity.lookup.url: ") && bad_url.contains("/api/whoami"), "{bad_url}");
    let zero = identity("  lookup:\n    url: /whoami\n    cookies: [sid]\n    max_entries: 0\n");
    assert!(zero.contains("identity.lookup.max_entries: must be at least 1"), "{zero}");
    let typo = identity("  lookup:\n    url: /whoami\n    cookie: [sid]\n");
    assert!(typo.contains("identity.lookup.cookie: unknown field"), "{typo}");
}
