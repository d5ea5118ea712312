"""Self-test of tests/frameworks/: mints every variant with the frameworks' own code, reads
each back with the same framework's reading code (Rails' cookie jar, Flask's session
interface, the express app), and checks that reference_verify.py (the spec, executable)
answers the same: the right user id for the good variants, the expected rejection reason
for the failure cases.

    target/frameworks/venv/bin/python tests/frameworks/selftest.py [-v]

Run tests/frameworks/setup.sh first. Ends with `N passed, N failed`; exit status 1 on a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import reference_verify as rv  # noqa: E402

VERBOSE = "-v" in sys.argv
results = {"passed": 0, "failed": 0}


def run(*cmd: str) -> str:
    out = subprocess.run(cmd, cwd=HERE, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def check(name: str, ok: bool, info: object = "") -> None:
    results["passed" if ok else "failed"] += 1
    if not ok or VERBOSE:
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f"  {info}" if info != "" else ""), flush=True)


def reference(fn, *args, claim_path=None, **kw):
    try:
        session, detail = fn(*args, **kw)
    except rv.Rejected as e:
        return {"ok": False, "reason": e.reason, "detail": e.detail}
    return {"ok": True, "session": session, "claim": rv.claim(session, claim_path) if claim_path else None, "detail": detail}


# ------------------------------------------------------------------------------- Rails

RUBY = "ruby"
SKB = secrets.token_hex(64)  # what `rails secret` prints: 128 hex characters
WARDEN = ["warden.user.user.key", 0, 0]


def rails_mint(*args: str) -> str:
    return run(RUBY, "rails_mint.rb", "--secret-key-base", SKB, *args)


def rails_read(header: str, *args: str) -> dict:
    return json.loads(run(RUBY, "rails_read.rb", "--secret-key-base", SKB, "--header", header, *args))


def rails_ref(header: str, **kw) -> dict:
    skb = kw.pop("skb", SKB)
    return reference(rv.verify_rails, header, kw.pop("cookie", "_shop_session"), skb, claim_path=WARDEN, **kw)


def rails_cases() -> None:
    good = [
        # name, mint args, rails_read args (a reader configured like the app that wrote it)
        ("rails 6.1 GCM + SHA1 KDF + _rails envelope (6.0-6.1 default)", [], []),
        ("rails 7.2 GCM + SHA256 KDF + _rails envelope (7.0+ default)", ["--rails", "7.2", "--kdf", "sha256"], ["--rails", "7.2", "--kdf", "sha256"]),
        ("rails 7.2 GCM + SHA1 KDF (7.x app without the 7.0 digest default)", ["--rails", "7.2"], ["--rails", "7.2"]),
        ("rails 6.1 GCM, bare message (5.2 default, no expiry)", ["--envelope", "bare"], []),
        ("rails 6.1 GCM, exp-only envelope pur=null (5.2 with expire_after)", ["--envelope", "bare", "--expires-in", "3600"], []),
        ("rails 6.1 GCM + envelope with exp in the future", ["--expires-in", "3600"], []),
        ("rails 6.1 CBC + HMAC-SHA1, bare message (4.1-5.1 with JSON)", ["--cipher", "aes-256-cbc", "--envelope", "bare"], []),
        ("rails 6.1 CBC + HMAC-SHA1 + _rails envelope (6.x, GCM off)", ["--cipher", "aes-256-cbc"], ["--cipher", "aes-256-cbc"]),
        ("rails 7.2 CBC + SHA256 KDF + _rails envelope", ["--rails", "7.2", "--cipher", "aes-256-cbc", "--kdf", "sha256"], ["--rails", "7.2", "--kdf", "sha256"]),
        ("rails 7.2 json_allow_marshal writes JSON", ["--rails", "7.2", "--serializer", "json_allow_marshal"], ["--rails", "7.2"]),
    ]
    for name, mint_args, read_args in good:
        uid = secrets.randbelow(10**6) + 1
        header = rails_mint(*mint_args, "--user-id", str(uid))
        framework = rails_read(header, *read_args)
        check(f"{name}: Rails reads it", framework["session"] is not None and framework["session"]["warden.user.user.key"][0][0] == uid, framework)
        ref = rails_ref(header)
        check(f"{name}: reference identifies user {uid}", ref["ok"] and ref["claim"] == str(uid), ref)

    # 7.1+ `_rails.data` envelope: written by MessageEncryptor with a real serializer; the
    # cookie jar does not unwrap it (it answers a session whose only key is "_rails").
    header = rails_mint("--rails", "7.2", "--kdf", "sha256", "--envelope", "data", "--user-id", "77")
    framework = rails_read(header, "--rails", "7.2", "--kdf", "sha256")
    check("rails 7.1+ _rails.data envelope: Rails' cookie jar sees only a '_rails' key", framework["session"] is not None and list(framework["session"]) == ["_rails"], framework)
    ref = rails_ref(header)
    check("rails 7.1+ _rails.data envelope: reference unwraps it (user 77)", ref["ok"] and ref["claim"] == "77" and ref["detail"]["envelope"] == "data", ref)

    # A GCM app reads legacy CBC cookies (cookies.rb upgrade_legacy_hmac_aes_cbc_cookies?).
    header = rails_mint("--cipher", "aes-256-cbc", "--envelope", "bare", "--user-id", "5")
    framework = rails_read(header)
    check("rails GCM reader also reads a CBC cookie (legacy upgrade)", framework["session"] is not None, framework)

    bad = [
        # name, mint args, reference kwargs, expected reason, rails_read args, rails expectation
        ("wrong secret_key_base", [], {"skb": secrets.token_hex(64)}, "bad_signature", None),
        ("wrong purpose (minted for cookie.other_session)", ["--cookie", "other_session", "--present-as", "_shop_session"], {}, "wrong_purpose", []),
        ("expired (exp 60 s ago)", ["--expires-in", "-60"], {}, "expired", []),
        ("expired, CBC", ["--cipher", "aes-256-cbc", "--expires-in", "-60"], {}, "expired", ["--cipher", "aes-256-cbc"]),
        ("Marshal-serialized session (cookies_serializer :marshal)", ["--serializer", "marshal"], {}, "unsupported_serializer", ["--serializer", "marshal"]),
        ("Marshal-serialized CBC bare (Rails 4.0 default)", ["--serializer", "marshal", "--cipher", "aes-256-cbc", "--envelope", "bare"], {}, "unsupported_serializer", ["--serializer", "marshal"]),
        ("tampered ciphertext", ["--tamper"], {}, "bad_signature", []),
        ("tampered CBC", ["--tamper", "--cipher", "aes-256-cbc"], {}, "bad_signature", []),
        ("payload a JSON array (cookies.encrypted[name] = [1, 2])", ["--raw-value", "[1,2]"], {}, "not_an_object", []),
        ("payload a JSON string", ["--raw-value", '"alice"'], {}, "not_an_object", []),
        ("SHA256-derived cookie, kdf pinned to sha1", ["--rails", "7.2", "--kdf", "sha256"], {"kdf": "sha1"}, "bad_signature", None),
        ("GCM cookie, cipher pinned to aes-256-cbc", [], {"cipher": "aes-256-cbc"}, "malformed", None),
    ]
    for name, mint_args, ref_kw, reason, read_args in bad:
        header = rails_mint(*mint_args, "--user-id", "3")
        ref = rails_ref(header, **ref_kw)
        check(f"rails {name}: reference rejects it as {reason}", not ref["ok"] and ref["reason"] == reason, ref)
        if read_args is not None:
            framework = rails_read(header, *read_args)
            if reason == "unsupported_serializer":
                ok = framework["session"] is not None  # Rails itself reads Marshal with :marshal
                label = "Rails (cookies_serializer :marshal) does read it: JSON-only is the proxy's choice"
            elif reason == "not_an_object":
                ok = framework["session"] is None and (framework["error"] or "").startswith("NoMethodError")
                label = "Rails' CookieStore fails on it (stringify_keys!)"
            else:
                ok = framework["session"] is None and framework["error"] is None
                label = "Rails rejects it too"
            check(f"rails {name}: {label}", ok, framework)

    # The JSON serializer meeting a Marshal cookie: 6.1 raises (a 500), 7.x answers nil.
    header = rails_mint("--serializer", "marshal")
    framework = rails_read(header)
    check("rails 6.1 :json reader on a Marshal cookie raises JSON::ParserError", (framework["error"] or "").startswith("JSON::ParserError"), framework)
    framework = rails_read(header, "--serializer", "hybrid")
    check("rails 6.1 :hybrid reader reads the Marshal cookie", framework["session"] is not None, framework)


# ------------------------------------------------------------------------------- Flask

FLASK_KEY = secrets.token_hex(32)
MAX_AGE = 31 * 86400


def flask_mint(*args: str) -> str:
    return run(sys.executable, "flask_mint.py", "--secret-key", FLASK_KEY, *args)


def flask_read(header: str, secret_key: str = FLASK_KEY, max_age: int = MAX_AGE, fallbacks=()):
    """Flask's own SecureCookieSessionInterface.open_session on a request with this header."""
    from flask import request

    from flask_app import create_app

    app = create_app(secret_key, max_age)
    app.config["SECRET_KEY_FALLBACKS"] = list(fallbacks)
    try:
        # Pushing the request context opens the session (flask/ctx.py RequestContext.push).
        with app.test_request_context("/", headers={"Cookie": header}):
            return dict(app.session_interface.open_session(app, request))
    except Exception as e:  # noqa: BLE001 - what Flask would turn into a 500
        return f"error: {e.__class__.__name__}"


def flask_cases() -> None:
    now = int(time.time())
    header = flask_mint("--user-id", "42")
    value = header.split("=", 1)[1]
    check("flask Flask-Login session is zlib-compressed", value.startswith("."), value)
    check("flask Flask-Login session: Flask reads it", flask_read(header).get("_user_id") == "42", flask_read(header))
    ref = reference(rv.verify_flask, header, FLASK_KEY, MAX_AGE, claim_path=["_user_id"])
    check("flask compressed: reference identifies user 42", ref["ok"] and ref["claim"] == "42" and ref["detail"]["compressed"], ref)

    header = flask_mint("--mode", "session", "--user-id", "43")
    check("flask small session is not compressed", not header.split("=", 1)[1].startswith("."), header)
    check("flask plain: Flask reads it", flask_read(header).get("_user_id") == "43")
    ref = reference(rv.verify_flask, header, FLASK_KEY, MAX_AGE, claim_path=["_user_id"])
    check("flask plain: reference identifies user 43", ref["ok"] and ref["claim"] == "43" and not ref["detail"]["compressed"], ref)

    old_key = secrets.token_hex(32)
    header = flask_mint("--user-id", "44", "--signing-key", old_key)
    check("flask signed with a SECRET_KEY_FALLBACKS key: Flask reads it", flask_read(header, fallbacks=[old_key]).get("_user_id") == "44")
    ref = reference(rv.verify_flask, header, FLASK_KEY, MAX_AGE, fallbacks=[old_key], claim_path=["_user_id"])
    check("flask fallback key: reference identifies user 44", ref["ok"] and ref["claim"] == "44", ref)

    bad = [
        ("wrong secret key", ["--signing-key", secrets.token_hex(32)], "bad_signature"),
        ("expired (signed 32 days ago, max_age 31 days)", ["--issued-at", str(now - 32 * 86400)], "expired"),
        ("signed in the future (age < 0)", ["--issued-at", str(now + 3600)], "expired"),
        ("tampered payload", ["--tamper"], "bad_signature"),
        ("payload a JSON array", ["--mode", "payload", "--data", "[1,2]"], "not_an_object"),
        ("payload a JSON string", ["--mode", "payload", "--data", '"alice"'], "not_an_object"),
    ]
    for name, args, reason in bad:
        header = flask_mint(*args)
        ref = reference(rv.verify_flask, header, FLASK_KEY, MAX_AGE, claim_path=["_user_id"])
        check(f"flask {name}: reference rejects it as {reason}", not ref["ok"] and ref["reason"] == reason, ref)
        got = flask_read(header)
        if reason == "not_an_object":
            check(f"flask {name}: Flask fails on it", isinstance(got, str) and got.startswith("error"), got)
        else:
            check(f"flask {name}: Flask answers an empty session", got == {}, got)
    # Exactly at max_age is still valid (age > max_age expires), one second more is not.
    header = flask_mint("--mode", "session", "--user-id", "45", "--issued-at", str(now - 100))
    ref = reference(rv.verify_flask, header, FLASK_KEY, 100, now=now, claim_path=["_user_id"])
    check("flask age == max_age is accepted", ref["ok"], ref)
    ref = reference(rv.verify_flask, header, FLASK_KEY, 99, now=now, claim_path=["_user_id"])
    check("flask age == max_age + 1 is expired", not ref["ok"] and ref["reason"] == "expired", ref)

    # Tagged JSON: a session with tuple, bytes, datetime, UUID and a dict whose key is a tag.
    from flask_app import create_app

    app = create_app(FLASK_KEY)
    with app.test_request_context("/"):
        s = app.session_interface.get_signing_serializer(app)
        value = s.dumps({
            "_user_id": "46",
            "cart": ("sku-1", 2),
            "blob": b"\x00\x01",
            "seen": datetime(2026, 1, 1, tzinfo=timezone.utc),
            "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "odd": {" t": "a key that is a tag"},
        })
    header = f"session={value}"
    ref = reference(rv.verify_flask, header, FLASK_KEY, MAX_AGE, claim_path=["_user_id"])
    check("flask tagged JSON: reference identifies user 46", ref["ok"] and ref["claim"] == "46" and ref["session"]["cart"] == ["sku-1", 2] and ref["session"]["odd"] == {" t": "a key that is a tag"}, ref)


# ------------------------------------------------------------------------------- cookie-session

NEW, OLD = "cs-key-new-" + secrets.token_hex(8), "cs-key-old-" + secrets.token_hex(8)


def express_mint(*args: str) -> str:
    return run("node", "express_mint.js", *args)


def express_page(port: int, header: str | None) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Cookie": header} if header else {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read().decode()
    # Only the line that names the visitor matters; keep the rest out of the report.
    return next((line for line in body.splitlines() if 'id="who"' in line), body)


def cookie_session_cases() -> None:
    proc = subprocess.Popen(["node", "express_app.js", "0", "--keys", f"{NEW},{OLD}"], cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        port = int(line.rsplit(" ", 1)[1])
        cases = [
            ("signed with the first key", ["--keys", f"{NEW},{OLD}", "--user-id", "1"], True, 0),
            ("signed with the second of two keys", ["--keys", OLD, "--user-id", "2"], True, 1),
            ("missing .sig", ["--keys", NEW, "--user-id", "1", "--no-sig"], "bad_signature", None),
            ("signed with a key not in the list", ["--keys", "some-other-key", "--user-id", "1"], "bad_signature", None),
            ("tampered value", ["--keys", NEW, "--user-id", "1", "--tamper"], "bad_signature", None),
            ("payload a JSON array", ["--keys", NEW, "--mode", "payload", "--data", "[1,2]"], "not_an_object", None),
            ("payload JSON null", ["--keys", NEW, "--mode", "payload", "--data", "null"], "not_an_object", None),
        ]
        for name, args, expect, index in cases:
            header = express_mint(*args)
            page = express_page(port, header)
            ref = reference(rv.verify_cookie_session, header, [NEW, OLD], claim_path=["passport", "user"])
            if expect is True:
                uid = args[args.index("--user-id") + 1]
                check(f"cookie-session {name}: the express app signs the user in", f'id="user-id">{uid}<' in page, page)
                check(f"cookie-session {name}: reference identifies user {uid} (key index {index})", ref["ok"] and ref["claim"] == uid and ref["detail"]["key_index"] == index, ref)
            else:
                check(f"cookie-session {name}: the express app is anonymous", "Not signed in" in page, page)
                check(f"cookie-session {name}: reference rejects it as {expect}", not ref["ok"] and ref["reason"] == expect, ref)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    check("express app exits when stdin closes", proc.returncode == 0, proc.returncode)


def main() -> int:
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    rails_cases()
    flask_cases()
    cookie_session_cases()
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
