"""Writes tests/frameworks/vectors.json: one cookie per variant and failure case, minted by
the frameworks' own code through the mint scripts, with the secrets, the decoded session
and what the proxy must answer (a user id, or a rejection reason). Each vector is checked
with reference_verify.py before it is written. The Rust unit tests can read the file.

    target/frameworks/venv/bin/python tests/frameworks/make_vectors.py

Rails cookies carry a random IV and session id, so a re-run writes different (equally
valid) vectors. Flask vectors are signed at a fixed time: verify them with `now` as given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import reference_verify as rv  # noqa: E402

# Fixed, test-only secrets.
SKB = "f2d0e7b4c1a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0"
OTHER_SKB = "0" * 64 + "1" * 64
FLASK_KEY = "flask-vector-secret-key"
FLASK_OLD_KEY = "flask-vector-old-secret-key"
CS_NEW, CS_OLD = "cookie-key-new", "cookie-key-old"
ISSUED = 1767225600  # 2026-01-01T00:00:00Z
FLASK_NOW = ISSUED + 60
MAX_AGE = 2678400  # 31 days, Flask's default PERMANENT_SESSION_LIFETIME
FAR = 100 * 365 * 86400  # an expiry a century away


def run(*cmd: str) -> dict:
    out = subprocess.run(cmd, cwd=HERE, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def outcome(fn, *args, claim_path, **kw) -> dict:
    try:
        session, _ = fn(*args, **kw)
    except rv.Rejected as e:
        return {"reason": e.reason}
    return {"user_id": rv.claim(session, claim_path), "session": session}


vectors: list[dict] = []


def add(vid: str, framework: str, variant: str, minted_by: str, config: dict, cookie_header: str, expect: dict, verify, **extra) -> None:
    got = verify()
    want = {k: v for k, v in expect.items() if k in ("reason", "user_id")}
    if {k: got.get(k) for k in want} != want:
        raise SystemExit(f"{vid}: reference says {got}, expected {expect}")
    v = {"id": vid, "framework": framework, "variant": variant, "minted_by": minted_by, "config": config, "cookie_header": cookie_header, "expect": expect}
    if "session" in got:
        v["decoded_session"] = got["session"]
    v.update(extra)
    vectors.append(v)


# ------------------------------------------------------------------------------- Rails

WARDEN = ["warden.user.user.key", 0, 0]


def rails(vid, variant, args, expect, verify_kw=None, config_extra=None):
    rails_version = "7.2" if "--rails" in args and "7.2" in args else "6.1"
    out = run("ruby", "rails_mint.rb", "--secret-key-base", SKB, "--json", *args)
    cfg = {"cookie": "_shop_session", "secret_key_base": SKB, "cipher": "auto", "key_derivation": "auto"}
    cfg.update(config_extra or {})
    kw = dict(verify_kw or {})
    skb = cfg["secret_key_base"]
    add(
        vid, "rails", variant,
        f"rails_mint.rb {' '.join(args)} (Rails {out['actionpack']}{', Debian trixie' if rails_version == '7.2' else ', Debian bookworm'})",
        cfg, out["cookie_header"], expect,
        lambda: outcome(rv.verify_rails, out["cookie_header"], "_shop_session", skb, claim_path=WARDEN, now=kw.get("now")),
        wire_value=out["wire_value"], value=out["value"], decrypted=rails_plaintext(out["value"], skb),
    )


def rails_plaintext(value: str, skb: str) -> str | None:
    """The decrypted bytes (the envelope JSON, or the bare serialized session), for debugging:
    UTF-8 text, or "base64:..." for binary (Marshal)."""
    import base64

    shape = "aes-256-gcm" if value.count("--") == 2 else "aes-256-cbc"
    for digest in ("sha1", "sha256"):
        try:
            plain = rv.rails_decrypt(value, rv.rails_keys(skb, digest), shape)
        except rv.Rejected:
            continue
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(plain).decode()
    return None


rails("rails-gcm-sha1-envelope", "AES-256-GCM, SHA1 PBKDF2, _rails envelope with pur (Rails 6.0-6.1 default)", ["--user-id", "101", "--user-name", "alice"], {"user_id": "101"})
rails("rails-gcm-sha256-envelope", "AES-256-GCM, SHA256 PBKDF2, _rails envelope with pur (Rails 7.0+ default)", ["--rails", "7.2", "--kdf", "sha256", "--user-id", "102"], {"user_id": "102"})
rails("rails-gcm-sha1-bare", "AES-256-GCM, SHA1, bare message (Rails 5.2 default without expiry)", ["--envelope", "bare", "--user-id", "103"], {"user_id": "103"})
rails("rails-gcm-sha1-exp-only", "AES-256-GCM, SHA1, _rails envelope with exp and pur null (Rails 5.2 with expire_after)", ["--envelope", "bare", "--expires-in", str(FAR), "--user-id", "104"], {"user_id": "104"})
rails("rails-gcm-sha1-envelope-exp", "AES-256-GCM, SHA1, _rails envelope with exp (a century away) and pur", ["--expires-in", str(FAR), "--user-id", "105"], {"user_id": "105"})
rails("rails-cbc-sha1-bare", "AES-256-CBC + HMAC-SHA1, bare message (Rails 4.1-5.1 with JSON cookies)", ["--cipher", "aes-256-cbc", "--envelope", "bare", "--user-id", "106"], {"user_id": "106"})
rails("rails-cbc-sha1-envelope", "AES-256-CBC + HMAC-SHA1, _rails envelope (6.x app with GCM off)", ["--cipher", "aes-256-cbc", "--user-id", "107"], {"user_id": "107"})
rails("rails-gcm-sha256-data-envelope", "AES-256-GCM, SHA256, the 7.1+ _rails.data envelope (MessageEncryptor, not the cookie jar)", ["--rails", "7.2", "--kdf", "sha256", "--envelope", "data", "--user-id", "108"], {"user_id": "108"})
rails("rails-expired", "GCM + envelope whose exp is 60 s before minting", ["--expires-in", "-60", "--user-id", "109"], {"reason": "expired"})
rails("rails-wrong-purpose", "GCM + envelope minted for cookie other_session (pur cookie.other_session), sent as _shop_session", ["--cookie", "other_session", "--present-as", "_shop_session", "--user-id", "110"], {"reason": "wrong_purpose"})
rails("rails-marshal", "GCM + envelope, Marshal-serialized session (cookies_serializer :marshal)", ["--serializer", "marshal", "--user-id", "111"], {"reason": "unsupported_serializer"})
rails("rails-cbc-marshal-bare", "CBC bare, Marshal (Rails 4.0 default)", ["--serializer", "marshal", "--cipher", "aes-256-cbc", "--envelope", "bare", "--user-id", "112"], {"reason": "unsupported_serializer"})
rails("rails-tampered", "GCM + envelope, one ciphertext character changed after minting", ["--tamper", "--user-id", "113"], {"reason": "bad_signature"})
rails("rails-not-an-object", "GCM + envelope, cookies.encrypted[_shop_session] = [1, 2]", ["--raw-value", "[1,2]"], {"reason": "not_an_object"})
rails("rails-wrong-secret", "GCM + envelope, verified with another secret_key_base", ["--user-id", "114"], {"reason": "bad_signature"}, config_extra={"secret_key_base": OTHER_SKB})

# ------------------------------------------------------------------------------- Flask


def flask(vid, variant, args, expect, config_extra=None, now=FLASK_NOW, minted=None):
    out = minted or run(sys.executable, "flask_mint.py", "--secret-key", FLASK_KEY, "--json", *args)
    cfg = {"cookie": "session", "secret_key": FLASK_KEY, "max_age": MAX_AGE}
    cfg.update(config_extra or {})
    fallbacks = cfg.get("secret_key_fallbacks", [])
    add(
        vid, "flask", variant, minted.pop("_by") if minted else f"flask_mint.py {' '.join(args)} (Flask {out['flask']}, itsdangerous {out['itsdangerous']})",
        cfg, out["cookie_header"], expect,
        lambda: outcome(rv.verify_flask, out["cookie_header"], cfg["secret_key"], cfg["max_age"], fallbacks=fallbacks, now=now, claim_path=["_user_id"]),
        now=now, timestamp=out.get("timestamp"), value=out["value"],
    )


flask("flask-login-compressed", "Flask-Login log-in, zlib-compressed payload ('.' prefix)", ["--user-id", "201", "--issued-at", str(ISSUED)], {"user_id": "201"})
flask("flask-plain", "small session, not compressed", ["--mode", "session", "--user-id", "202", "--issued-at", str(ISSUED)], {"user_id": "202"})
flask("flask-fallback-key", "signed with the old key, app has it in SECRET_KEY_FALLBACKS", ["--user-id", "203", "--signing-key", FLASK_OLD_KEY, "--issued-at", str(ISSUED)], {"user_id": "203"}, config_extra={"secret_key_fallbacks": [FLASK_OLD_KEY]})
flask("flask-fallback-key-not-configured", "signed with the old key, app without fallbacks", ["--user-id", "204", "--signing-key", FLASK_OLD_KEY, "--issued-at", str(ISSUED)], {"reason": "bad_signature"})
flask("flask-expired", "signed 31 days + 1 s before now", ["--user-id", "205", "--issued-at", str(ISSUED)], {"reason": "expired"}, now=ISSUED + MAX_AGE + 1)
flask("flask-age-equals-max-age", "signed exactly max_age before now (still valid: age > max_age expires)", ["--user-id", "206", "--issued-at", str(ISSUED)], {"user_id": "206"}, now=ISSUED + MAX_AGE)
flask("flask-future", "signed 1 h after now (itsdangerous: age < 0 is expired)", ["--user-id", "207", "--issued-at", str(ISSUED + 3600)], {"reason": "expired"}, now=ISSUED)
flask("flask-tampered", "compressed payload, one character changed", ["--user-id", "208", "--issued-at", str(ISSUED), "--tamper"], {"reason": "bad_signature"})
flask("flask-not-an-object", "the session serializer's dumps([1, 2])", ["--mode", "payload", "--data", "[1,2]", "--issued-at", str(ISSUED)], {"reason": "not_an_object"})
flask("flask-wrong-secret", "verified with another secret key", ["--user-id", "209", "--issued-at", str(ISSUED)], {"reason": "bad_signature"}, config_extra={"secret_key": "another-secret"})

# Tagged JSON, made in-process with the app's own serializer at the fixed time.
from unittest import mock  # noqa: E402

from itsdangerous.timed import TimestampSigner  # noqa: E402

from flask_app import create_app  # noqa: E402

app = create_app(FLASK_KEY)
with app.test_request_context("/"), mock.patch.object(TimestampSigner, "get_timestamp", lambda self: ISSUED):
    value = app.session_interface.get_signing_serializer(app).dumps({
        "_user_id": "210",
        "cart": ("sku-1", 2),
        "blob": b"\x00\x01",
        "seen": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "odd": {" t": "a key that is a tag"},
    })
flask(
    "flask-tagged-json", "TaggedJSONSerializer tags: tuple ' t', bytes ' b', datetime ' d', UUID ' u', ' di'", [], {"user_id": "210"},
    minted={"cookie_header": f"session={value}", "value": value, "timestamp": ISSUED, "_by": "SecureCookieSessionInterface.get_signing_serializer(app).dumps(...) in make_vectors.py"},
)

# ------------------------------------------------------------------------------- cookie-session


def cs(vid, variant, args, expect, keys=(CS_NEW, CS_OLD)):
    out = run("node", "express_mint.js", "--json", *args)
    add(
        vid, "cookie_session", variant, f"express_mint.js {' '.join(args)} (cookie-session {out['versions']['cookie-session']}, cookies {out['versions']['cookies']}, keygrip {out['versions']['keygrip']})",
        {"cookie": "session", "keys": list(keys)}, out["cookie_header"], expect,
        lambda: outcome(rv.verify_cookie_session, out["cookie_header"], list(keys), claim_path=["passport", "user"]),
        signed_data=out["signed_data"], signed_with=out["signed_with"],
    )


cs("cs-first-key", "signed with keys[0]", ["--keys", f"{CS_NEW},{CS_OLD}", "--user-id", "301"], {"user_id": "301"})
cs("cs-second-key", "signed with the second of two keys (minted by an app with [OLD])", ["--keys", CS_OLD, "--user-id", "302"], {"user_id": "302"})
cs("cs-missing-sig", "no session.sig cookie", ["--keys", CS_NEW, "--user-id", "303", "--no-sig"], {"reason": "bad_signature"})
cs("cs-foreign-key", "signed with a key not in the list", ["--keys", "some-other-key", "--user-id", "304"], {"reason": "bad_signature"})
cs("cs-tampered", "value changed, .sig kept", ["--keys", CS_NEW, "--user-id", "305", "--tamper"], {"reason": "bad_signature"})
cs("cs-not-an-object", "cookie-session encoding of [1, 2], signed by the cookies module", ["--keys", CS_NEW, "--mode", "payload", "--data", "[1,2]"], {"reason": "not_an_object"})

path = os.path.join(HERE, "vectors.json")
with open(path, "w") as f:
    import hashlib
    import hmac

    derived = {
        "rails": {
            "secret_key_base": SKB,
            **{
                digest: {name: key.hex() for name, key in rv.rails_keys(SKB, digest).items()}
                for digest in ("sha1", "sha256")
            },
            "note": "PBKDF2-HMAC-<digest>(secret_key_base, salt, 1000): gcm = 'authenticated encrypted cookie' 32 bytes; cbc = 'encrypted cookie' 32 bytes; cbc_sign = 'signed encrypted cookie' 64 bytes",
        },
        "flask": {
            key: hmac.new(key.encode(), b"cookie-session", hashlib.sha1).hexdigest()
            for key in (FLASK_KEY, FLASK_OLD_KEY)
        },
    }
    json.dump({"generated_by": "tests/frameworks/make_vectors.py", "derived_keys": derived, "vectors": vectors}, f, indent=2, ensure_ascii=False)
    f.write("\n")
print(f"wrote {len(vectors)} vectors to {os.path.relpath(path)}")


# ------------------------------------------------------------------------------- the spec's section

def markdown() -> str:
    subst = {SKB: "$SKB", OTHER_SKB: "$OTHER_SKB"}
    lines = [
        "Secrets (test-only):",
        "",
        f"* `$SKB` (Rails `secret_key_base`) = `{SKB}`",
        f"* `$OTHER_SKB` = `{OTHER_SKB}`",
        f"* Flask `secret_key` = `{FLASK_KEY}`, old key (fallback) = `{FLASK_OLD_KEY}`; `max_age` = {MAX_AGE}",
        f"* cookie-session keys = `[\"{CS_NEW}\", \"{CS_OLD}\"]`",
        "",
    ]
    for v in vectors:
        cfg = {k: subst.get(val, val) if isinstance(val, str) else val for k, val in v["config"].items()}
        exp = v["expect"]
        want = f"user id `{exp['user_id']}`" if "user_id" in exp else f"`rejected:{exp['reason']}`"
        lines.append(f"#### `{v['id']}`: {v['variant']}")
        lines.append("")
        lines.append(f"* minted by: {v['minted_by']}")
        lines.append(f"* config: `{json.dumps(cfg, separators=(', ', ': '))}`" + (f", now = {v['now']}" if v.get("now") else ""))
        lines.append(f"* expect: {want}")
        if "decoded_session" in v:
            lines.append(f"* decoded session: `{json.dumps(v['decoded_session'], separators=(',', ':'), ensure_ascii=False)}`")
        lines.append("")
        lines.append("```")
        lines.append(f"Cookie: {v['cookie_header']}")
        lines.append("```")
        lines.append("")
    return "\n".join(lines)


spec = os.path.join(HERE, "..", "..", "docs", "frameworks-spec.md")
if os.path.exists(spec):
    with open(spec) as f:
        text = f.read()
    begin, end = "<!-- vectors:begin -->", "<!-- vectors:end -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(spec, "w") as f:
        f.write(head + begin + "\n" + markdown() + end + tail)
    print(f"rewrote the test-vector section of {os.path.relpath(spec)}")
