"""Mints Flask session cookies with Flask's own code.

    target/frameworks/venv/bin/python tests/frameworks/flask_mint.py --secret-key KEY [options]

Modes:
  login (default)  a real Flask-Login log-in: flask_app.create_app() with one user
                   (--user-id, --user-name), its POST /login through Flask's test client;
                   the session is {"_fresh": true, "_id": <sha512 hex>, "_user_id": "ID"},
                   which itsdangerous zlib-compresses (the value starts with ".").
  session          a route of the same app sets the session to --data (a JSON object,
                   default {"_user_id": "ID"}); a small session is not compressed.
  payload          the app's own signing serializer
                   (SecureCookieSessionInterface.get_signing_serializer(app).dumps) signs
                   --data as it is, e.g. a JSON array: a payload that is not an object.

Options:
  --issued-at UNIX    sign as if the clock said UNIX (TimestampSigner.get_timestamp is
                      patched for the mint only): an old one is an expired cookie, a future
                      one is rejected by itsdangerous too ("age < 0").
  --signing-key KEY   sign with KEY while --secret-key is the app's (a wrong-secret cookie,
                      or an old key for SECRET_KEY_FALLBACKS).
  --tamper            change one character of the payload after minting (a tampered cookie).
  --json              print details (the decoded session, timestamp, compressed) as JSON.

Prints the Cookie request-header value `session=VALUE`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import itsdangerous  # noqa: E402
from flask import session  # noqa: E402
from importlib.metadata import version  # noqa: E402
from itsdangerous.timed import TimestampSigner  # noqa: E402

from flask_app import create_app  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Mint a Flask session cookie with Flask's own code")
    p.add_argument("--secret-key", required=True)
    p.add_argument("--signing-key", default=None)
    p.add_argument("--mode", choices=["login", "session", "payload"], default="login")
    p.add_argument("--user-id", default="1")
    p.add_argument("--user-name", default="alice")
    p.add_argument("--data", default=None, help="JSON: the session (mode session) or payload (mode payload)")
    p.add_argument("--cookie", default="session", help="SESSION_COOKIE_NAME")
    p.add_argument("--issued-at", type=int, default=None)
    p.add_argument("--tamper", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    signing_key = args.signing_key or args.secret_key
    app = create_app(signing_key, users={args.user_name: (args.user_id, "pw")})
    app.config["SESSION_COOKIE_NAME"] = args.cookie
    data = json.loads(args.data) if args.data is not None else {"_user_id": args.user_id}

    @app.post("/_mint_session")
    def _mint_session():
        session.clear()
        session.update(data)
        return "ok"

    patch = (
        mock.patch.object(TimestampSigner, "get_timestamp", lambda self: args.issued_at)
        if args.issued_at is not None
        else contextlib.nullcontext()
    )
    with patch:
        if args.mode == "payload":
            with app.test_request_context("/"):
                value = app.session_interface.get_signing_serializer(app).dumps(data)
        else:
            client = app.test_client()
            if args.mode == "login":
                resp = client.post("/login", data={"user": args.user_name, "password": "pw"})
                assert resp.status_code == 303, resp.status_code
            else:
                resp = client.post("/_mint_session")
            cookie = client.get_cookie(args.cookie)
            assert cookie is not None, resp.headers
            value = cookie.value

    if args.tamper:
        # Flip one character of the payload part (before the timestamp and signature).
        i = 1 if value.startswith(".") else 0
        i += 5
        value = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]

    header = f"{args.cookie}={value}"
    if args.json:
        # Read it back with Flask's own serializer (no max_age: we only want the payload).
        with app.test_request_context("/"):
            s = app.session_interface.get_signing_serializer(app)
            try:
                decoded, ts = s.loads(value, return_timestamp=True)
                ts = int(ts.timestamp())
            except itsdangerous.BadData as e:
                decoded, ts = f"unreadable: {e.__class__.__name__}", None
        print(
            json.dumps(
                {
                    "flask": version("flask"),
                    "flask_login": version("flask-login"),
                    "itsdangerous": version("itsdangerous"),
                    "werkzeug": version("werkzeug"),
                    "cookie_header": header,
                    "value": value,
                    "secret_key": args.secret_key,
                    "signing_key": signing_key,
                    "compressed": value.startswith("."),
                    "timestamp": ts,
                    "session": decoded,
                    "tampered": args.tamper,
                },
                indent=2,
                default=str,
            )
        )
    else:
        print(header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
