"""An executable form of docs/frameworks-spec.md, written from the spec and NOT from the
frameworks' code (stdlib + the `cryptography` package only): it reads a Cookie request
header the way the spec says the proxy must, and answers the session or a rejection
reason. selftest.py runs it against cookies minted by the real frameworks, so a mismatch
between the spec and the frameworks shows up as a failing check. It is a cross-check for
the Rust implementation, not part of the proxy.

    python reference_verify.py rails --secret-key-base SKB [--cookie _shop_session]
        [--cipher auto|aes-256-gcm|aes-256-cbc] [--kdf auto|sha1|sha256] [--now UNIX]
        [--claim warden.user.user.key,0,0] --header 'COOKIE HEADER'
    python reference_verify.py flask --secret-key KEY [--fallback-key OLD ...] [--max-age 2678400]
        [--cookie session] [--now UNIX] [--claim _user_id] --header 'COOKIE HEADER'
    python reference_verify.py cookie_session --key NEW --key OLD [--cookie session]
        [--claim passport.user] --header 'COOKIE HEADER'

Prints JSON: {"ok": true, "session": {...}, "claim": "...", "detail": {...}}
          or {"ok": false, "reason": "bad_signature" | "expired" | ...}.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import re
import sys
import time
import urllib.parse
import zlib
from datetime import datetime

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class Rejected(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------- cookie header parsing


def rack_cookie(header: str, name: str) -> str | None:
    """Rack::Utils.parse_cookies_header (rack 2.2 / 3.1): split on `;` + spaces, first
    occurrence of a name wins, value form-decoded (`+` -> space, %XX), raw if that fails."""
    for item in re.split(r"; *", header):
        if not item:
            continue
        key, _, value = item.partition("=")
        if key == name:
            if re.search(r"%(?![0-9A-Fa-f]{2})", value):
                return value  # URI.decode_www_form_component raises; Rack keeps the raw value
            return urllib.parse.unquote_plus(value, errors="replace")  # non-UTF-8 fails base64 later anyway
    return None


def werkzeug_cookie(header: str, name: str) -> str | None:
    """werkzeug.sansio.http.parse_cookie: `;`-separated `key=value`, spaces/tabs around
    trimmed, a "quoted" value unquoted; Flask reads the first value of a name."""
    for item in header.split(";"):
        key, eq, value = item.strip(" \t").partition("=")
        if key.strip(" \t") != name:
            continue
        value = value.strip(" \t")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\([0-3][0-7]{2}|.)", lambda m: chr(int(m.group(1), 8)) if len(m.group(1)) == 3 else m.group(1), value[1:-1])
        return value
    return None


def cookies_js_cookie(header: str, name: str) -> str | None:
    """npm `cookies` Cookies#get: the first match of /(?:^|;) *NAME=([^;]*)/, a leading `"`
    strips the first and last character; no URL-decoding."""
    m = re.search(r"(?:^|;) *" + re.escape(name) + r"=([^;]*)", header)
    if not m:
        return None
    value = m.group(1)
    if value[:1] == '"':
        value = value[1:-1]
    return value


# ---------------------------------------------------------------- Rails


def b64_strict(s: str) -> bytes:
    """Ruby Base64.strict_decode64: standard alphabet, padding required, nothing else."""
    try:
        if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", s) or len(s) % 4:
            raise ValueError
        return base64.b64decode(s, validate=True)
    except (ValueError, binascii.Error):
        raise Rejected("malformed", "not strict base64")


def rails_keys(skb: str, digest: str) -> dict[str, bytes]:
    secret = skb.encode("utf-8")

    def derive(salt: str, n: int) -> bytes:
        return hashlib.pbkdf2_hmac(digest, secret, salt.encode(), 1000, n)

    return {
        "gcm": derive("authenticated encrypted cookie", 32),
        "cbc": derive("encrypted cookie", 32),
        "cbc_sign": derive("signed encrypted cookie", 64),
    }


def rails_decrypt(value: str, keys: dict[str, bytes], cipher: str) -> bytes:
    parts = value.split("--")
    if cipher == "aes-256-gcm":
        if len(parts) != 3:
            raise Rejected("malformed", "GCM wants data--iv--tag")
        ct, iv, tag = (b64_strict(p) for p in parts)
        if len(iv) != 12 or len(tag) != 16:
            raise Rejected("malformed", "iv must be 12 bytes, tag 16")
        try:
            return AESGCM(keys["gcm"]).decrypt(iv, ct + tag, b"")
        except Exception:
            raise Rejected("bad_signature", "GCM tag mismatch")
    if len(parts) != 2:
        raise Rejected("malformed", "CBC wants base64(blob)--hexdigest")
    data, digest = parts
    if not data or not re.fullmatch(r"[0-9a-f]{40}", digest):
        raise Rejected("malformed", "CBC wants 40 lowercase hex digits of HMAC-SHA1")
    expected = hmac.new(keys["cbc_sign"], data.encode("ascii", "replace"), hashlib.sha1).hexdigest()
    if not hmac.compare_digest(expected.encode(), digest.encode("ascii", "replace")):
        raise Rejected("bad_signature", "HMAC mismatch")
    blob = b64_strict(data).decode("ascii", "replace").split("--")
    if len(blob) != 2:
        raise Rejected("malformed", "CBC blob wants base64(ct)--base64(iv)")
    ct, iv = (b64_strict(p) for p in blob)
    if len(iv) != 16 or not ct or len(ct) % 16:
        raise Rejected("malformed", "bad CBC lengths")
    dec = Cipher(algorithms.AES(keys["cbc"]), modes.CBC(iv)).decryptor()
    padded = dec.update(ct) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise Rejected("malformed", "bad PKCS#7 padding")


def parse_iso8601(s: str) -> float:
    # Time.iso8601 as Rails writes it: 2026-01-01T00:00:00.000Z (also accepts an offset).
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def rails_unwrap(plain: bytes, cookie: str, now: float) -> tuple[bytes | object, str]:
    """The _rails metadata envelope. Returns (serialized bytes, envelope) or, for the 7.1+
    `_rails.data` envelope, (the already-deserialized object, envelope)."""
    envelope = None
    if plain[:1] == b"{":
        try:
            envelope = json.loads(plain.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            envelope = None
    if not (isinstance(envelope, dict) and "_rails" in envelope):
        return plain, "bare"
    meta = envelope["_rails"]
    if not isinstance(meta, dict):
        raise Rejected("malformed", "_rails is not an object")
    exp = meta.get("exp")
    if exp is not None:
        try:
            expires = parse_iso8601(exp)
        except (TypeError, ValueError):
            raise Rejected("malformed", "unparseable exp")
        if now >= expires:
            raise Rejected("expired", f"exp {exp}")
    pur = meta.get("pur")
    if pur not in (None, "", f"cookie.{cookie}"):
        raise Rejected("wrong_purpose", f"pur {pur!r}")
    if "message" in meta:
        if not isinstance(meta["message"], str):
            raise Rejected("malformed", "_rails.message is not a string")
        try:
            return base64.b64decode(meta["message"], validate=True), "message"
        except (ValueError, binascii.Error):
            raise Rejected("malformed", "_rails.message is not base64")
    if "data" in meta:
        return meta["data"], "data"
    raise Rejected("malformed", "_rails without message or data")


def rails_deserialize(serialized: bytes) -> object:
    if serialized.startswith(b"\x04\x08"):
        raise Rejected("unsupported_serializer", "Marshal")
    if serialized.startswith(b"\xcc\x80"):
        raise Rejected("unsupported_serializer", "MessagePack")
    try:
        return json.loads(serialized.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Rejected("unsupported_serializer", "not JSON")


def verify_rails(header: str, cookie: str, skb: str, cipher: str = "auto", kdf: str = "auto", now: float | None = None):
    if not skb.strip():
        raise SystemExit("config error: blank secret_key_base")
    now = time.time() if now is None else now
    value = rack_cookie(header, cookie)
    if not value:
        raise Rejected("no_cookie")
    shape = "aes-256-gcm" if value.count("--") == 2 else "aes-256-cbc" if value.count("--") == 1 else None
    if shape is None or (cipher != "auto" and cipher != shape):
        raise Rejected("malformed", "cookie shape does not fit the cipher")
    last: Rejected | None = None
    for digest in (["sha256", "sha1"] if kdf == "auto" else [kdf]):
        try:
            plain = rails_decrypt(value, rails_keys(skb, digest), shape)
            break
        except Rejected as e:
            last = e
    else:
        raise last  # type: ignore[misc]
    serialized, envelope = rails_unwrap(plain, cookie, now)
    session = serialized if envelope == "data" else rails_deserialize(serialized)
    if not isinstance(session, dict):
        raise Rejected("not_an_object")
    return session, {"cipher": shape, "kdf": digest, "envelope": envelope}


# ---------------------------------------------------------------- Flask


def b64url_lenient(s: bytes, reason: str = "malformed") -> bytes:
    """itsdangerous.encoding.base64_decode: pad with `=`, urlsafe_b64decode (non-alphabet
    characters are discarded by Python's decoder)."""
    s = s + b"=" * (-len(s) % 4)
    try:
        return base64.urlsafe_b64decode(s)
    except (ValueError, binascii.Error):
        raise Rejected(reason, "bad base64")


FLASK_TAGS = {" t", " di", " b", " m", " u", " d"}


def flask_untag(value):
    """flask.json.tag.TaggedJSONSerializer._untag_scan, enough for identity claims:
    tuples become lists, ` di` dicts are restored, bytes/markup/uuid/datetime stay opaque."""
    if isinstance(value, list):
        return [flask_untag(v) for v in value]
    if not isinstance(value, dict):
        return value
    value = {k: flask_untag(v) for k, v in value.items()}
    if len(value) == 1:
        (key, inner), = value.items()
        if key == " t":
            return list(inner)
        if key == " di":
            (k2, v2), = inner.items()
            return {k2[:-2]: v2}
        if key in (" b", " m", " u", " d"):
            return {"$flask_tag": key.strip(), "value": inner}
    return value


def verify_flask(header: str, secret_key: str, max_age: int = 31 * 86400, cookie: str = "session", fallbacks=(), now: float | None = None):
    now = int(time.time() if now is None else now)
    value = werkzeug_cookie(header, cookie)
    if not value:
        raise Rejected("no_cookie")
    raw = value.encode("utf-8")
    if b"." not in raw:
        raise Rejected("malformed", "no separator")
    signed, sig_b64 = raw.rsplit(b".", 1)
    sig = b64url_lenient(sig_b64, "bad_signature")
    for key in [secret_key, *reversed(list(fallbacks))]:
        derived = hmac.new(key.encode("utf-8"), b"cookie-session", hashlib.sha1).digest()
        if hmac.compare_digest(sig, hmac.new(derived, signed, hashlib.sha1).digest()):
            break
    else:
        raise Rejected("bad_signature", "signature mismatch")
    if b"." not in signed:
        raise Rejected("malformed", "timestamp missing")
    payload, ts_b64 = signed.rsplit(b".", 1)
    ts_bytes = b64url_lenient(ts_b64)
    if len(ts_bytes) > 8:
        raise Rejected("malformed", "malformed timestamp")
    ts = int.from_bytes(ts_bytes, "big")
    age = now - ts
    if age > max_age or age < 0:
        raise Rejected("expired", f"age {age}s, max_age {max_age}s")
    compressed = payload.startswith(b".")
    data = b64url_lenient(payload[1:] if compressed else payload)
    if compressed:
        try:
            data = zlib.decompress(data)
        except zlib.error:
            raise Rejected("malformed", "zlib")
    try:
        session = flask_untag(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        raise Rejected("unsupported_serializer", "not JSON")
    if not isinstance(session, dict):
        raise Rejected("not_an_object")
    return session, {"timestamp": ts, "compressed": compressed}


# ---------------------------------------------------------------- Express cookie-session


def keygrip_sign(data: str, key: str) -> str:
    digest = hmac.new(key.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode().replace("/", "_").replace("+", "-").replace("=", "")


def verify_cookie_session(header: str, keys, cookie: str = "session"):
    value = cookies_js_cookie(header, cookie)
    if not value:
        raise Rejected("no_cookie")
    sig = cookies_js_cookie(header, cookie + ".sig")
    if not sig:
        raise Rejected("bad_signature", "missing .sig")
    data = f"{cookie}={value}"
    for index, key in enumerate(keys):
        if hmac.compare_digest(sig.encode(), keygrip_sign(data, key).encode()):
            break
    else:
        raise Rejected("bad_signature", "no key matches")
    s = value.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        body = base64.b64decode(s + "=" * (-len(s) % 4), validate=True).decode("utf-8", "replace")
    except (ValueError, binascii.Error):
        raise Rejected("malformed", "not base64")
    try:
        session = json.loads(body)
    except ValueError:
        raise Rejected("unsupported_serializer", "not JSON")
    if not isinstance(session, dict):
        raise Rejected("not_an_object")
    return session, {"key_index": index}


# ---------------------------------------------------------------- claims and CLI


def claim(session, path):
    cur = session
    for step in path:
        if isinstance(cur, dict) and isinstance(step, str) and step in cur:
            cur = cur[step]
        elif isinstance(cur, list) and isinstance(step, int) and 0 <= step < len(cur):
            cur = cur[step]
        else:
            return None
    if isinstance(cur, bool) or cur is None or isinstance(cur, (dict, list)):
        return None
    return str(cur)


def parse_claim(s: str):
    """`a,0,b`: explicit segments (digits are list indices), for keys that contain dots such
    as Devise's `warden.user.user.key`; otherwise a dotted path (`passport.user`)."""
    if "," in s:
        return [int(p) if p.isdigit() else p for p in s.split(",")]
    return s.split(".")


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="framework", required=True)
    r = sub.add_parser("rails")
    r.add_argument("--secret-key-base", required=True)
    r.add_argument("--cookie", default="_shop_session")
    r.add_argument("--cipher", default="auto", choices=["auto", "aes-256-gcm", "aes-256-cbc"])
    r.add_argument("--kdf", default="auto", choices=["auto", "sha1", "sha256"])
    r.add_argument("--claim", default="warden.user.user.key,0,0")
    f = sub.add_parser("flask")
    f.add_argument("--secret-key", required=True)
    f.add_argument("--fallback-key", action="append", default=[])
    f.add_argument("--max-age", type=int, default=31 * 86400)
    f.add_argument("--cookie", default="session")
    f.add_argument("--claim", default="_user_id")
    c = sub.add_parser("cookie_session")
    c.add_argument("--key", action="append", required=True)
    c.add_argument("--cookie", default="session")
    c.add_argument("--claim", default="passport.user")
    for sp in (r, f, c):
        sp.add_argument("--header", required=True)
        sp.add_argument("--now", type=float, default=None)
    a = p.parse_args(argv)
    try:
        if a.framework == "rails":
            session, detail = verify_rails(a.header, a.cookie, a.secret_key_base, a.cipher, a.kdf, a.now)
        elif a.framework == "flask":
            session, detail = verify_flask(a.header, a.secret_key, a.max_age, a.cookie, a.fallback_key, a.now)
        else:
            session, detail = verify_cookie_session(a.header, a.key, a.cookie)
    except Rejected as e:
        print(json.dumps({"ok": False, "reason": e.reason, "detail": e.detail}))
        return 0
    print(json.dumps({"ok": True, "session": session, "claim": claim(session, parse_claim(a.claim)), "detail": detail}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
