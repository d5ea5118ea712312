"""A small real Flask + Flask-Login app for end-to-end tests behind the proxy.

    target/frameworks/venv/bin/python tests/frameworks/flask_app.py [PORT] \
        [--host 127.0.0.1] [--secret-key KEY] [--max-age SECONDS] [--stay]

Routes: GET / (a full HTML page naming the signed-in user, or a login form), GET /login
(the form), POST /login (form fields `user`, `password`; 303 to / on success, 401 page on
failure), GET or POST /logout (303 to /).

Users: alice / wonderland (id 1), bob / builder (id 2). Flask-Login stores the id as the
string `get_id()` returns under session["_user_id"].

The session is Flask's default SecureCookieSessionInterface (cookie `session`), signed
with --secret-key (default: $FLASK_SECRET_KEY, else a fixed test key), checked against
PERMANENT_SESSION_LIFETIME = --max-age seconds (default 31 days, Flask's default).

Prints `listening on PORT` on stdout once the socket is bound (PORT 0 = any free port),
and exits when stdin reaches end of file (unless --stay), so a test harness can stop it
by closing the pipe.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import threading
from datetime import timedelta

from flask import Flask, redirect, request
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

DEFAULT_SECRET_KEY = "flask-test-secret-key-0123456789abcdef"

USERS = {
    "alice": ("1", "wonderland"),
    "bob": ("2", "builder"),
}


class User(UserMixin):
    def __init__(self, user_id: str, name: str):
        self.id = user_id
        self.name = name


def create_app(secret_key: str = DEFAULT_SECRET_KEY, max_age: int | None = None, users=None) -> Flask:
    users = dict(USERS if users is None else users)
    by_id = {uid: name for name, (uid, _pw) in users.items()}

    app = Flask(__name__)
    app.config["SECRET_KEY"] = secret_key
    if max_age is not None:
        app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=max_age)

    login_manager = LoginManager(app)

    @login_manager.user_loader
    def load_user(user_id: str):
        name = by_id.get(user_id)
        return User(user_id, name) if name is not None else None

    def page(title: str, body: str, status: int = 200):
        doc = (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n"
        )
        return doc, status, {"Content-Type": "text/html; charset=utf-8"}

    login_form = (
        '<form method="post" action="/login">\n'
        '<label>User <input name="user" autocomplete="username"></label>\n'
        '<label>Password <input name="password" type="password" autocomplete="current-password"></label>\n'
        '<button type="submit">Log in</button>\n'
        "</form>"
    )

    @app.get("/")
    def index():
        if current_user.is_authenticated:
            who = (
                f'<p id="who">Signed in as {html.escape(current_user.name)} '
                f'(user id <span id="user-id">{html.escape(current_user.id)}</span>)</p>\n'
                '<form method="post" action="/logout"><button type="submit">Log out</button></form>'
            )
        else:
            who = '<p id="who">Not signed in</p>\n' + login_form
        return page("Flask test app", f"<h1>Flask test app</h1>\n{who}")

    @app.get("/login")
    def login_page():
        return page("Log in", f"<h1>Log in</h1>\n{login_form}")

    @app.post("/login")
    def login():
        name = request.form.get("user", "")
        password = request.form.get("password", "")
        entry = users.get(name)
        if entry is None or entry[1] != password:
            return page("Log in", f'<h1>Log in</h1>\n<p id="error">Wrong user or password</p>\n{login_form}', 401)
        login_user(User(entry[0], name))
        return redirect("/", code=303)

    @app.route("/logout", methods=["GET", "POST"])
    def logout():
        logout_user()
        return redirect("/", code=303)

    return app


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--secret-key", default=os.environ.get("FLASK_SECRET_KEY", DEFAULT_SECRET_KEY))
    parser.add_argument("--max-age", type=int, default=None, help="PERMANENT_SESSION_LIFETIME in seconds")
    parser.add_argument("--stay", action="store_true", help="do not exit when stdin closes")
    args = parser.parse_args(argv)

    from werkzeug.serving import make_server

    app = create_app(args.secret_key, args.max_age)
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"listening on {server.server_port}", flush=True)

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        if args.stay:
            thread.join()
        else:
            while sys.stdin.buffer.read(65536):
                pass
    except KeyboardInterrupt:
        pass
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
