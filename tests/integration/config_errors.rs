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
        "proxy.yaml:6:3: inject.postion: unknown field `postion`, expected one of position, include_paths, exclude_paths"
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
    let wrong_kind = missing_file.replace("keys/nope.pem", "keys/ec_public.pem");
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
