"""A small, real OpenID provider for the sign-in tests (tests/oidc.rs), laid out like
Authentik: the issuer ends with a slash (http://127.0.0.1:PORT/application/o/streamwarden/),
discovery and keys live under it, authorize and token beside it.

It does what a provider must: discovery, a JWKS, the authorization code flow with PKCE
(S256 only), client authentication (client_secret_basic or client_secret_post), single-use
codes bound to the redirect URI, and RS256-signed ID tokens carrying the nonce. What a test
wants to break it chooses per sign-in, through extra query parameters on the authorization
request (the test appends them to the URL our app redirects to):

  test_sub     the subject who signs in (required)
  test_groups  comma-separated groups claim
  test_exp     exp, in seconds from the moment the token is issued (default 300)
  test_iat     iat, in seconds from that moment (default 0)
  test_iss     the iss claim (default: the issuer the provider states)
  test_key     good (default: the key in the JWKS), rogue (a key that is not), none (unsigned)
  test_kid     the kid header (default: the signing key's; a rogue token may claim "good")

Usage: oidc_provider.py CLIENT_ID CLIENT_SECRET [STATED_ISSUER]
  STATED_ISSUER makes discovery and tokens name another issuer than the URL the provider is
  reached at (a provider configured with a different public URL).
Listens on an ephemeral loopback port, prints "READY <port>", and stops when stdin closes.
"""

import base64
import hashlib
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SLUG_PATH = "/application/o/streamwarden/"
AUTHORIZE_PATH = "/application/o/authorize/"
TOKEN_PATH = "/application/o/token/"
JWKS_PATH = SLUG_PATH + "jwks/"
DISCOVERY_PATH = SLUG_PATH + ".well-known/openid-configuration"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_uint(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Key:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict:
        public = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64url_uint(public.n),
            "e": b64url_uint(public.e),
        }

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())


def jwt(header: dict, claims: dict, key: "Key | None") -> str:
    signing_input = (
        b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    )
    signature = key.sign(signing_input.encode()) if key else b""
    return signing_input + "." + b64url(signature)


def main() -> None:
    client_id, client_secret = sys.argv[1], sys.argv[2]
    stated_override = sys.argv[3] if len(sys.argv) > 3 else None
    keys = {"good": Key("good"), "rogue": Key("rogue")}
    codes: dict = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

        def base(self) -> str:
            return f"http://127.0.0.1:{self.server.server_address[1]}"

        def issuer(self) -> str:
            return stated_override or self.base() + SLUG_PATH

        def send(self, status: int, body, content_type="application/json", headers=()):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def refuse(self, status: int, error: str, description: str) -> None:
            self.send(status, {"error": error, "error_description": description})

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == DISCOVERY_PATH:
                base = self.base()
                self.send(
                    200,
                    {
                        "issuer": self.issuer(),
                        "authorization_endpoint": base + AUTHORIZE_PATH,
                        "token_endpoint": base + TOKEN_PATH,
                        "jwks_uri": base + JWKS_PATH,
                        "response_types_supported": ["code"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "scopes_supported": ["openid", "profile", "email", "groups"],
                        "token_endpoint_auth_methods_supported": [
                            "client_secret_basic",
                            "client_secret_post",
                        ],
                        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce",
                                             "preferred_username", "groups"],
                        "code_challenge_methods_supported": ["S256"],
                        "grant_types_supported": ["authorization_code"],
                    },
                )
            elif url.path == JWKS_PATH:
                self.send(200, {"keys": [keys["good"].jwk()]})
            elif url.path == AUTHORIZE_PATH:
                self.authorize({k: v[0] for k, v in parse_qs(url.query).items()})
            else:
                self.send(404, {"error": "not_found"})

        def authorize(self, q: dict) -> None:
            redirect_uri = q.get("redirect_uri", "")
            if q.get("client_id") != client_id or not redirect_uri.startswith("http"):
                self.send(400, b"unknown client or redirect URI", "text/plain")
                return
            problem = None
            if q.get("response_type") != "code":
                problem = "unsupported_response_type"
            elif "openid" not in q.get("scope", "").split():
                problem = "invalid_scope"
            elif q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                problem = "invalid_request"
            elif not q.get("test_sub"):
                problem = "access_denied"
            sep = "&" if "?" in redirect_uri else "?"
            if problem:
                back = {"error": problem, "state": q.get("state", "")}
            else:
                code = secrets.token_urlsafe(24)
                with lock:
                    codes[code] = {"request": q, "redirect_uri": redirect_uri}
                back = {"code": code, "state": q.get("state", "")}
            self.send(302, b"", "text/plain", [("Location", redirect_uri + sep + urlencode(back))])

        def do_POST(self) -> None:
            if urlsplit(self.path).path != TOKEN_PATH:
                self.send(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                given = (unquote_plus(user), unquote_plus(password))
            else:
                given = (form.get("client_id"), form.get("client_secret"))
            if given != (client_id, client_secret):
                self.refuse(401, "invalid_client", "client authentication failed")
                return
            if form.get("grant_type") != "authorization_code":
                self.refuse(400, "unsupported_grant_type", form.get("grant_type", ""))
                return
            with lock:
                grant = codes.pop(form.get("code", ""), None)
            if grant is None:
                self.refuse(400, "invalid_grant", "unknown or used code")
                return
            if form.get("redirect_uri") != grant["redirect_uri"]:
                self.refuse(400, "invalid_grant", "redirect_uri differs from the authorization's")
                return
            q = grant["request"]
            verifier = form.get("code_verifier", "")
            if b64url(hashlib.sha256(verifier.encode()).digest()) != q["code_challenge"]:
                self.refuse(400, "invalid_grant", "PKCE verification failed")
                return
            self.send(200, self.tokens(q))

        def tokens(self, q: dict) -> dict:
            now = int(time.time())
            claims = {
                "iss": q.get("test_iss", self.issuer()),
                "sub": q["test_sub"],
                "aud": client_id,
                "exp": now + int(q.get("test_exp", "300")),
                "iat": now + int(q.get("test_iat", "0")),
                "auth_time": now,
                "preferred_username": q["test_sub"],
            }
            if q.get("nonce"):
                claims["nonce"] = q["nonce"]
            if q.get("test_groups"):
                claims["groups"] = q["test_groups"].split(",")
            choice = q.get("test_key", "good")
            key = None if choice == "none" else keys[choice]
            header = {"alg": "none"} if key is None else {"alg": "RS256", "typ": "JWT"}
            header["kid"] = q.get("test_kid", key.kid if key else "good")
            return {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": q.get("scope", "openid"),
                "id_token": jwt(header, claims, key),
            }

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
