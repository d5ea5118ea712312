//! The command line, run as a user would: `--help`, `check`, `hash`, the default config
//! path and `INVENT_PROXY_CONFIG`, and `demo` (`explain` has its own module).

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use invent_proxy::demo::{DEMO_SECRET_KEY, DEMO_USER_ID};
use invent_proxy::identity::user_hash;

use crate::support::process::TempPath;
use crate::support::*;

fn repo() -> &'static str {
    env!("CARGO_MANIFEST_DIR")
}

/// Environment the shipped configs expect.
pub const CONFIG_ENV: [(&str, &str); 4] = [
    ("INVENT_SECRET_KEY", SECRET_KEY),
    ("SESSION_JWT_SECRET", JWT_SECRET),
    ("BLOG_SECRET_KEY", "sk_blog_example"),
    ("BLOG_JWT_SECRET", "blog-jwt-secret-0123456789abcdef"),
];

fn invent_proxy(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(repo())
        .env_remove("INVENT_PROXY_CONFIG")
        .envs(CONFIG_ENV)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_command_has_help() {
    for (args, expected) in [
        (vec!["--help"], "check"),
        (vec!["run", "--help"], "--config"),
        (vec!["check", "--help"], "--config"),
        (vec!["hash", "--help"], "--user-id"),
        (vec!["explain", "--help"], "--cookie <NAME=VALUE>"),
        (vec!["demo", "--help"], "--listen"),
    ] {
        let output = invent_proxy(&args);
        assert!(output.status.success(), "{args:?}");
        assert!(stdout(&output).contains(expected), "{args:?}: {}", stdout(&output));
    }
    assert!(stdout(&invent_proxy(&["--help"])).contains("INVENT_PROXY_CONFIG"));
}

#[test]
fn check_validates_the_default_config_and_never_prints_secrets() {
    let output = invent_proxy(&["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = stdout(&output);
    assert!(summary.contains("config/invent-proxy.yaml: OK"), "{summary}");
    assert!(summary.contains("secret key set"), "{summary}");
    assert!(!summary.contains(SECRET_KEY) && !summary.contains(JWT_SECRET), "{summary}");
}

#[test]
fn check_reports_a_bad_config_on_one_line_with_key_and_line() {
    let file =
        TempPath::with_contents("upstream:\n  url: http://127.0.0.1:3000\n  conect_timeout: 5s\nassistant:\n  id: a\n");
    let output = invent_proxy(&["check", "--config", file.path()]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains(&format!("{}:3:3: upstream.conect_timeout: unknown field `conect_timeout`", file.path())),
        "{message}"
    );
}

#[test]
fn the_config_env_variable_overrides_the_default_path() {
    let file = TempPath::with_contents("upstream:\n  url: http://127.0.0.1:3000\nassistant:\n  id: from_env\n");
    let output = Command::new(binary())
        .arg("check")
        .current_dir(std::env::temp_dir())
        .env("INVENT_PROXY_CONFIG", file.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("from_env"));
    let missing = Command::new(binary())
        .arg("check")
        .current_dir(std::env::temp_dir())
        .env_remove("INVENT_PROXY_CONFIG")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("config/invent-proxy.yaml"), "{}", stderr(&missing));
}

#[test]
fn config_may_come_before_or_after_the_command_and_check_warns_about_examples() {
    for args in [
        ["--config", "config/examples/anonymous.yaml", "check"],
        ["check", "--config", "config/examples/anonymous.yaml"],
    ] {
        let output = invent_proxy(&args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert!(stdout(&output).contains("warning: assistant.id is the example `ast_123`"), "{}", stdout(&output));
    }
    let inline = TempPath::with_contents(
        "upstream:\n  url: http://127.0.0.1:3000\nassistant:\n  id: ast_real\nidentity:\n  secret_key: sk_in_file\n  jwt:\n    cookie: s\n    secret: ${SESSION_JWT_SECRET}\n",
    );
    let output = invent_proxy(&["check", "--config", inline.path()]);
    let printed = stdout(&output);
    assert!(printed.contains("warning: identity.secret_key is written in the file"), "{printed}");
    assert!(!printed.contains("identity.jwt.secret is written"), "{printed}");
    assert!(!printed.contains("sk_in_file"), "{printed}");
}

#[test]
fn hash_prints_the_user_hash_of_the_spec_vectors() {
    let output = invent_proxy(&["hash", "--user-id", "user_42"]);
    assert_eq!(stdout(&output).trim(), "45bb144b8ebbe9876600b63739423f010f4ea3d43771ea3fee1329d463683b59");
    let output = invent_proxy(&["hash", "--config", "config/invent-proxy.yaml", "--user-id", "Zoë-7"]);
    assert_eq!(stdout(&output).trim(), "04a33c483382739aca1dc954e79aac17831e5595be959c9dbe91cec509dcc2b5");
}

#[test]
fn hash_needs_only_the_secret_keys_variable() {
    let output = Command::new(binary())
        .args(["hash", "--config", "config/invent-proxy.yaml", "--user-id", "user_42"])
        .current_dir(repo())
        .env_clear()
        .env("INVENT_SECRET_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(output.status.success(), "SESSION_JWT_SECRET is not needed to hash: {}", stderr(&output));
    assert_eq!(stdout(&output).trim(), user_hash(SECRET_KEY, "user_42"));
    let without = Command::new(binary())
        .args(["hash", "--config", "config/invent-proxy.yaml", "--user-id", "user_42"])
        .current_dir(repo())
        .env_clear()
        .output()
        .unwrap();
    assert!(!without.status.success());
    assert!(stderr(&without).contains("identity.secret_key: environment variable `INVENT_SECRET_KEY` is not set"));
    let blog = invent_proxy(&[
        "hash",
        "--config",
        "config/examples/many-sites.yaml",
        "--site",
        "x.blog.example.com",
        "--user-id",
        "7",
    ]);
    assert_eq!(stdout(&blog).trim(), user_hash("sk_blog_example", "7"), "{}", stderr(&blog));
}

#[test]
fn a_reader_that_goes_away_ends_a_command_quietly() {
    for args in [&["check", "--config", "config/examples/anonymous.yaml"][..], &["schema"], &["hash", "--user-id", "1"]]
    {
        // A pipe whose reader is gone before the command writes: every write fails (EPIPE).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(binary())
            .args(args)
            .current_dir(repo())
            .envs(CONFIG_ENV)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {:?} {}", output.status, stderr(&output));
        assert_eq!(stderr(&output), "", "{args:?}: nothing to say about it");
    }
}

#[test]
fn the_docs_show_the_nginx_snippet_ci_runs() {
    let snippet = std::fs::read_to_string(std::path::Path::new(repo()).join("deploy/nginx/invent-proxy.conf")).unwrap();
    let docs = std::fs::read_to_string(std::path::Path::new(repo()).join("docs/operations.md")).unwrap();
    assert!(
        docs.contains(&format!("```nginx\n{snippet}```")),
        "docs/operations.md must show deploy/nginx/invent-proxy.conf as it is"
    );
}

/// Every YAML file under `config/`.
fn shipped_configs() -> Vec<std::path::PathBuf> {
    let mut files = vec![];
    let mut dirs = vec![std::path::Path::new(repo()).join("config")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 4, "the default config and examples: {files:?}");
    files
}

#[test]
fn every_shipped_config_passes_check() {
    for file in shipped_configs() {
        let output = invent_proxy(&["check", "--config", file.to_str().unwrap()]);
        assert!(output.status.success(), "{}: {}", file.display(), stderr(&output));
    }
}

#[tokio::test]
async fn the_demo_shows_the_widget_and_a_verified_identity_after_login() {
    let mut demo = Command::new(binary())
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("http://127.0.0.1:") && l.contains("open this"))
                .map(str::to_owned)
        })
        .expect("the demo prints where to open it");
    let rest: Vec<String> =
        lines.by_ref().map_while(Result::ok).take_while(|l| !l.starts_with("Press Ctrl-C")).collect();
    let rest = rest.join("\n");
    assert!(
        rest.contains(&format!("assistant secret key:  {DEMO_SECRET_KEY}")),
        "the demo's secrets are shown:\n{rest}"
    );
    assert!(rest.contains(invent_proxy::demo::DEMO_SESSION_SECRET), "{rest}");
    std::thread::spawn(move || for _ in lines {});
    let http = client();
    let fetch = |path: &str, cookie: Option<&str>| {
        let mut req = http::Request::get(format!("{}{}", url.trim_end_matches('/'), path));
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        let req = req.body(http_body_util::Full::new(bytes::Bytes::new())).unwrap();
        let http = http.clone();
        async move {
            use http_body_util::BodyExt;
            let response = http.request(req).await.unwrap();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (headers, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (_, home) = fetch("/", None).await;
    assert_eq!(home.matches("<invent-assistant").count(), 1, "{home}");
    assert_eq!(widget_attribute(&home, "user-id"), None);
    let (headers, _) = fetch("/login", None).await;
    let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let (_, account) = fetch("/account", Some(&cookie)).await;
    assert_eq!(widget_attribute(&account, "user-id").as_deref(), Some(DEMO_USER_ID));
    assert_eq!(widget_attribute(&account, "user-hash"), Some(user_hash(DEMO_SECRET_KEY, DEMO_USER_ID)));
    let (_, legacy) = fetch("/legacy", None).await;
    assert!(legacy.trim_end().ends_with("async defer></script>"), "{legacy}");
    let (_, json) = fetch("/api/status", None).await;
    assert!(!json.contains("invent-assistant"));
    let (_, script) = fetch("/__invent-demo/button.js", None).await;
    assert!(script.contains("customElements.define(\"invent-assistant\""));
    let _ = demo.kill();
    let _ = demo.wait();
}

#[tokio::test]
async fn check_warns_about_an_upstream_that_does_not_answer() {
    let (dead, _reserved) = unreachable_address();
    let file = TempPath::with_contents(&format!("upstream:\n  url: http://{dead}\nassistant:\n  id: ast_real\n"));
    let output = invent_proxy(&["check", "--config", file.path()]);
    assert!(output.status.success(), "a down upstream is a warning, not an error");
    assert!(stdout(&output).contains(&format!("warning: upstream {dead} does not answer")), "{}", stdout(&output));
}

#[test]
fn a_taken_port_names_the_key_it_came_from() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let pki = crate::support::pki::Pki::new(&["localhost"]);
    let yaml = format!(
        "listen: 127.0.0.1:0\nlisten_tls:\n  address: {}\n  cert_file: {}\n  key_file: {}\nupstream:\n  url: http://127.0.0.1:9\nassistant:\n  id: a\n",
        taken.local_addr().unwrap(),
        pki.cert_file.display(),
        pki.key_file.display()
    );
    let file = TempPath::with_contents(&yaml);
    let output = invent_proxy(&["run", "--config", file.path()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("(set `listen_tls.address` in"), "{}", stderr(&output));
}

#[test]
fn check_loads_a_jwks_url_as_run_would() {
    let (dead, _reserved) = unreachable_address();
    let yaml = format!(
        "upstream:\n  url: http://127.0.0.1:9\nassistant:\n  id: ast_real\nidentity:\n  secret_key: k\n  jwt:\n    cookie: s\n    algorithms: [RS256]\n    jwks_url: http://{dead}/jwks.json\n"
    );
    let required = TempPath::with_contents(&yaml);
    let output = invent_proxy(&["check", "--config", required.path()]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains(&format!("identity.jwt.jwks_url: cannot load the key set at http://{dead}/jwks.json")));
    let optional = TempPath::with_contents(&format!("{yaml}    jwks_optional: true\n"));
    let output = invent_proxy(&["check", "--config", optional.path()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("warning: identity.jwt.jwks_url cannot be loaded now"), "{}", stdout(&output));
}

#[test]
fn the_shipped_schema_is_the_generated_one_and_every_shipped_config_follows_it() {
    let generated = stdout(&invent_proxy(&["schema"]));
    let shipped =
        std::fs::read_to_string(std::path::Path::new(repo()).join("config/invent-proxy.schema.json")).unwrap();
    assert!(
        generated == shipped,
        "config/invent-proxy.schema.json is stale: run `invent-proxy schema > config/invent-proxy.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&shipped).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for file in shipped_configs() {
        let yaml = std::fs::read_to_string(&file).unwrap();
        let config: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(&config).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
    let wrong: serde_json::Value =
        serde_saphyr::from_str("upstream: { url: http://x, colour: red }\nassistant: { id: a }\n").unwrap();
    assert!(!validator.is_valid(&wrong), "an unknown key fails the schema as it fails the loader");
    let with_log = |format: &str| -> serde_json::Value {
        let yaml = format!("upstream: {{ url: http://x }}\nassistant: {{ id: a }}\nlog: {{ format: \"{format}\" }}\n");
        serde_saphyr::from_str(&yaml).unwrap()
    };
    assert!(validator.is_valid(&with_log("json")) && validator.is_valid(&with_log("${LOG_FORMAT}")));
    assert!(!validator.is_valid(&with_log("xml")), "a value outside an enum's spellings fails");
}

#[test]
fn hash_takes_the_secret_key_of_the_site_named() {
    let yaml = "listen: 127.0.0.1:0\nassistant: { id: a }\nidentity: { secret_key: key-main, jwt: { cookie: s, secret: j } }\n\
                sites:\n  - hosts: [a.test]\n    upstream: { url: \"http://127.0.0.1:9\" }\n  - hosts: [\"*.b.test\"]\n    \
                upstream: { url: \"http://127.0.0.1:9\" }\n    identity: { secret_key: key-b, jwt: { cookie: s, secret: j } }\n";
    let file = crate::support::process::TempPath::with_contents(yaml);
    let hash = |extra: &[&str]| {
        let args = [&["hash", "--config", file.path(), "--user-id", "u1"][..], extra].concat();
        let output = invent_proxy(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output).trim().to_owned()
    };
    assert_eq!(hash(&[]), invent_proxy::identity::user_hash("key-main", "u1"));
    assert_eq!(hash(&["--site", "www.b.test:443"]), invent_proxy::identity::user_hash("key-b", "u1"));
    assert_eq!(hash(&["--site", "A.TEST"]), invent_proxy::identity::user_hash("key-main", "u1"));
    assert!(!invent_proxy(&["hash", "--config", file.path(), "--user-id", "u1", "--site", "c.test"]).status.success());
}
