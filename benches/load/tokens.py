#!/usr/bin/env python3
"""Session tokens for the identity scenarios.

    tokens.py SECRET COUNT OUT_FILE

writes COUNT HS256 JWTs, one a line, signed with SECRET: distinct `sub` (user-1 …),
a `name`, `iat` now and `exp` one day ahead. Deterministic apart from the times.
"""

import base64
import hashlib
import hmac
import json
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_hs256(secret: str, claims: dict) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def main():
    secret, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    now = int(time.time())
    with open(out, "w") as f:
        for i in range(1, count + 1):
            claims = {"sub": f"user-{i}", "name": f"Bench User {i}", "iat": now, "exp": now + 86400}
            f.write(jwt_hs256(secret, claims) + "\n")


if __name__ == "__main__":
    main()
