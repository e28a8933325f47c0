#!/usr/bin/env python3
"""A local fake of Google's and GitHub's OAuth 2.0 login that speaks the real protocols.

One process serves both providers on 127.0.0.1 under path prefixes, so the auth service can be
pointed at it instead of the real hosts:

  /google   OpenID Connect: authorize, token (PKCE S256), RS256 id_token, JWKS, userinfo,
            discovery document. Errors are shaped like Google's (400 invalid_grant, 401
            invalid_client, 302 with error=access_denied).
  /github   OAuth app: authorize, access_token (PKCE S256; JSON or form answers, errors as HTTP
            200 like GitHub), REST API /github/api/user and /github/api/user/emails.
  /_control test-only: choose the user the next login returns, deny consent, register clients,
            rotate the signing key, move the clock, read the recorded requests, reset.

Run: oauth_provider.py --port 0   (prints one line {"port": N} on stdout once it listens)
Only the standard library and `cryptography` are used.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import html
import json
import re
import secrets
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CODE_LIFETIME = 600  # seconds an authorization code is valid (Google and GitHub: 10 minutes)
TOKEN_LIFETIME = 3599  # Google's expires_in
ID_TOKEN_LIFETIME = 3600
MAX_BODY = 1 << 20
PKCE_VALUE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 verifier and S256 challenge
GITHUB_ERROR_URI = ("https://docs.github.com/apps/managing-oauth-apps/"
                    "troubleshooting-oauth-app-access-token-request-errors/")

DEFAULT_CLIENTS = {
    "google": {"google-client-id": "google-client-secret"},
    "github": {"github-client-id": "github-client-secret"},
}
DEFAULT_USERS = {
    "google": {
        "sub": "110169484474386276334",
        "email": "ada@example.com",
        "email_verified": True,
        "name": "Ada Lovelace",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "picture": "https://lh3.googleusercontent.test/a/ada",
    },
    "github": {
        "id": 583231,
        "login": "octocat",
        "name": "The Octocat",
        "avatar_url": "https://avatars.githubusercontent.test/u/583231?v=4",
        "email": "octocat@example.com",
        "emails": [
            {"email": "octocat@example.com", "primary": True, "verified": True,
             "visibility": "public"},
            {"email": "octocat@users.noreply.github.test", "primary": False, "verified": True,
             "visibility": None},
        ],
    },
}
SECRET_FIELDS = ("client_secret",)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def pkce_s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


class BadRequest(Exception):
    """Input that cannot be understood at all: answered with 400 and a short text."""


class SigningKey:
    def __init__(self, kid: str):
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict:
        numbers = self.private.public_key().public_numbers()
        return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}

    def sign_jwt(self, claims: dict) -> str:
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        signature = self.private.sign(signing_input.encode("ascii"), padding.PKCS1v15(),
                                      hashes.SHA256())
        return signing_input + "." + b64url(signature)


class State:
    """Everything the fake remembers; one lock guards all of it."""

    def __init__(self, issuer: str | None):
        self.lock = threading.Lock()
        self.configured_issuer = issuer
        self.base_url = ""  # set once the port is known
        self.first_key = SigningKey("fake-google-key-1")
        self.key_serial = 1
        self.reset_locked()

    def reset_locked(self):
        self.google_issuer = self.configured_issuer
        self.clients = copy.deepcopy(DEFAULT_CLIENTS)
        self.users = copy.deepcopy(DEFAULT_USERS)
        self.deny = {"google": False, "github": False}
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.keys = [self.first_key]
        self.clock_offset = 0.0

    def now(self) -> float:
        return time.time() + self.clock_offset

    def issuer(self) -> str:
        return self.google_issuer or f"{self.base_url}/google"

    def add_key(self) -> SigningKey:
        self.key_serial += 1
        key = SigningKey(f"fake-google-key-{self.key_serial}")
        self.keys.append(key)
        return key


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # an unparsable request line still gets a status line
    server_version = "InkwellFakeOAuth/1.0"
    state: State  # set on the class by make_server
    verbose = False

    # --- plumbing ----------------------------------------------------------------------------

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if self.verbose:
            sys.stderr.write("oauth-fake: " + (format % args) + "\n")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_HEAD(self):
        self.dispatch("HEAD")

    ROUTES = {
        "/google/o/oauth2/v2/auth": {"GET": "google_authorize"},
        "/google/token": {"POST": "google_token"},
        "/google/oauth2/v3/certs": {"GET": "google_certs"},
        "/google/oauth2/v3/userinfo": {"GET": "google_userinfo", "POST": "google_userinfo"},
        "/google/.well-known/openid-configuration": {"GET": "google_discovery"},
        "/github/login/oauth/authorize": {"GET": "github_authorize"},
        "/github/login/oauth/access_token": {"POST": "github_token"},
        "/github/api/user": {"GET": "github_user"},
        "/github/api/user/emails": {"GET": "github_emails"},
        "/_control/user": {"POST": "control_user"},
        "/_control/deny": {"POST": "control_deny"},
        "/_control/client": {"POST": "control_client"},
        "/_control/config": {"POST": "control_config"},
        "/_control/advance": {"POST": "control_advance"},
        "/_control/reset": {"POST": "control_reset"},
        "/_control/rotate-key": {"POST": "control_rotate_key"},
        "/_control/requests": {"GET": "control_requests", "DELETE": "control_clear_requests"},
        "/_control/health": {"GET": "control_health"},
    }

    def dispatch(self, method: str):
        self.head_only = method == "HEAD"
        try:
            self.body = self.read_body()
            parsed = urllib.parse.urlsplit(self.path)
            self.route_path = parsed.path
            self.raw_query = parsed.query
            methods = self.ROUTES.get(parsed.path)
            if methods is None:
                self.send(404, "text/plain; charset=utf-8", b"Not Found\n")
                return
            name = methods.get("GET" if method == "HEAD" else method)
            if name is None:
                self.send(405, "text/plain; charset=utf-8", b"Method Not Allowed\n",
                          {"Allow": ", ".join(sorted(methods))})
                return
            getattr(self, name)()
        except BadRequest as error:
            self.send(400, "text/plain; charset=utf-8", f"Bad Request: {error}\n".encode())
        except Exception:  # a bug in the fake must not take the test down with it
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            try:
                self.send(500, "text/plain; charset=utf-8", b"Internal Server Error\n")
            except OSError:
                pass

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise BadRequest("chunked request bodies are not supported")
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            self.close_connection = True
            raise BadRequest("bad Content-Length") from None
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            raise BadRequest("Content-Length out of range")
        return self.rfile.read(length)

    def send(self, status: int, content_type: str, body: bytes, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not self.head_only:
            self.wfile.write(body)

    def send_json(self, status: int, value, headers: dict | None = None):
        body = json.dumps(value).encode()
        self.send(status, "application/json; charset=utf-8", body, headers)

    def send_html_error(self, status: int, title: str, detail: str):
        page = (f"<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error {status} "
                f"({html.escape(title)})</title><p><b>Error {status}: {html.escape(title)}</b>"
                f"<p>{html.escape(detail)}</html>\n")
        self.send(status, "text/html; charset=utf-8", page.encode())

    def redirect(self, location: str):
        self.send(302, "text/html; charset=utf-8",
                  f'<a href="{html.escape(location)}">Found</a>\n'.encode(),
                  {"Location": location, "Cache-Control": "no-store"})

    def single_params(self, text: str) -> dict[str, str]:
        """Query or form parameters; a repeated parameter is an error (RFC 6749 3.1)."""
        try:
            pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                                           errors="strict", max_num_fields=100)
        except (ValueError, UnicodeDecodeError) as error:
            raise BadRequest(f"unparsable parameters: {error}") from None
        params: dict[str, str] = {}
        for name, value in pairs:
            if name in params:
                raise BadRequest(f"parameter {name} given more than once")
            params[name] = value
        return params

    def form(self) -> dict[str, str]:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise BadRequest("expected an application/x-www-form-urlencoded body")
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("body is not UTF-8") from None
        return self.single_params(text)

    def json_body(self) -> dict:
        if not self.body:
            return {}
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("body is not JSON") from None
        if not isinstance(value, dict):
            raise BadRequest("body is not a JSON object")
        return value

    def basic_credentials(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            client_id, _, secret = decoded.partition(":")
            return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
        except (ValueError, UnicodeDecodeError):
            return ("", "")

    def bearer_token(self, schemes: tuple[str, ...]) -> str | None:
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() in schemes and token.strip():
            return token.strip()
        return None

    def record(self, provider: str, params: dict | None = None):
        """Keeps what a test may want to assert: method, path, parameters minus secrets, the
        authentication scheme used (never the credential)."""
        params = dict(params or {})
        for name in SECRET_FIELDS:
            if name in params:
                params[name] = "<redacted>"
        auth = self.headers.get("Authorization", "")
        entry = {
            "provider": provider,
            "method": self.command,
            "path": self.route_path,
            "params": params,
            "auth_scheme": auth.split(" ", 1)[0] if auth else None,
            "accept": self.headers.get("Accept"),
            "content_type": self.headers.get("Content-Type"),
            "user_agent": self.headers.get("User-Agent"),
            "time": time.time(),
        }
        with self.state.lock:
            self.state.requests.append(entry)

    # --- shared authorization-code logic --------------------------------------------------------

    def authorize(self, provider: str, params: dict[str, str], require_pkce: bool):
        """Validates an authorize request; returns (redirect_uri, state) for an error redirect or
        sends the page itself. Returns None when a response was already sent."""
        st = self.state
        client_id = params.get("client_id", "")
        with st.lock:
            known = client_id in st.clients[provider]
        if not client_id or not known:
            if provider == "google":
                self.send_html_error(401, "invalid_client", "The OAuth client was not found.")
            else:
                self.send(404, "text/html; charset=utf-8", b"<h1>404 Not Found</h1>\n")
            return None
        redirect_uri = params.get("redirect_uri", "")
        target = urllib.parse.urlsplit(redirect_uri)
        if target.scheme not in ("http", "https") or not target.netloc or target.fragment:
            self.send_html_error(400, "redirect_uri_mismatch",
                                 "redirect_uri is missing or is not an absolute http(s) URI.")
            return None
        state_param = params.get("state")
        if provider == "google":
            if params.get("response_type") != "code":
                self.send_html_error(400, "invalid_request",
                                     "Required parameter is missing: response_type=code")
                return None
            if not params.get("scope"):
                self.send_html_error(400, "invalid_request", "Missing required parameter: scope")
                return None
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if require_pkce or challenge is not None or method is not None:
            if method != "S256":
                self.send_html_error(400, "invalid_request",
                                     "code_challenge_method must be S256.")
                return None
            if not challenge or not PKCE_VALUE.match(challenge):
                self.send_html_error(400, "invalid_request",
                                     "code_challenge is missing or malformed.")
                return None
        with st.lock:
            denied = st.deny[provider]
            user = copy.deepcopy(st.users[provider])
        if denied:
            extra = {"error": "access_denied"}
            if provider == "github":
                extra["error_description"] = "The user has denied your application access."
                extra["error_uri"] = ("https://docs.github.com/apps/managing-oauth-apps/"
                                      "troubleshooting-authorization-request-errors/"
                                      "#access-denied")
            if state_param is not None:
                extra["state"] = state_param
            self.redirect(add_query(redirect_uri, extra))
            return None
        code = ("4/0A" if provider == "google" else "") + secrets.token_urlsafe(24)
        with st.lock:
            st.codes[code] = {
                "provider": provider,
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": params.get("scope", ""),
                "code_challenge": challenge,
                "nonce": params.get("nonce"),
                "user": user,
                "expires_at": st.now() + CODE_LIFETIME,
                "used": False,
                "tokens": [],
            }
        answer = {"code": code}
        if provider == "google":
            answer["scope"] = params.get("scope", "")
        if state_param is not None:
            answer["state"] = state_param
        self.redirect(add_query(redirect_uri, answer))
        return None

    def redeem(self, provider: str, form: dict[str, str]):
        """Checks a token request; returns (grant, None) or (None, (error, description, status))."""
        st = self.state
        basic = self.basic_credentials()
        client_id, secret = basic if basic else (form.get("client_id", ""), form.get(
            "client_secret", ""))
        if basic and form.get("client_id") not in (None, client_id):
            return None, ("invalid_request", "client_id differs from the Basic credentials", 400)
        with st.lock:
            expected = st.clients[provider].get(client_id)
        if expected is None or not secrets.compare_digest(expected.encode(), secret.encode()):
            if provider == "google":
                return None, ("invalid_client", "Unauthorized" if expected is not None
                              else "The OAuth client was not found.", 401)
            return None, ("incorrect_client_credentials",
                          "The client_id and/or client_secret passed are incorrect.", 200)
        code = form.get("code", "")
        bad_code = (("invalid_grant", "Bad Request", 400) if provider == "google" else
                    ("bad_verification_code", "The code passed is incorrect or expired.", 200))
        with st.lock:
            grant = st.codes.get(code)
            if grant is None or grant["provider"] != provider:
                return None, bad_code
            if grant["used"]:
                # A replayed code revokes what it already issued (RFC 6749 4.1.2).
                for token in grant["tokens"]:
                    st.tokens.pop(token, None)
                return None, bad_code
            if st.now() > grant["expires_at"] or grant["client_id"] != client_id:
                return None, bad_code
            # Any failure from here on still burns the code, as the real providers do.
            grant["used"] = True
        if form.get("redirect_uri", grant["redirect_uri"] if provider == "github" else None) \
                != grant["redirect_uri"]:
            if provider == "google":
                return None, ("redirect_uri_mismatch", "Bad Request", 400)
            return None, ("redirect_uri_mismatch",
                          "The redirect_uri MUST match the registered callback URL for this "
                          "application.", 200)
        if grant["code_challenge"] is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                return None, (bad_code[0], "Missing code verifier.", bad_code[2])
            if not PKCE_VALUE.match(verifier) or not secrets.compare_digest(
                    pkce_s256(verifier), grant["code_challenge"]):
                return None, (bad_code[0], "Invalid code verifier.", bad_code[2])
        elif form.get("code_verifier"):
            return None, (bad_code[0], "code_verifier was given but no code_challenge was.",
                          bad_code[2])
        return grant, None

    def issue_access_token(self, provider: str, grant: dict, prefix: str) -> str:
        token = prefix + secrets.token_urlsafe(32)
        with self.state.lock:
            self.state.tokens[token] = {
                "provider": provider,
                "user": grant["user"],
                "scope": grant["scope"],
                "client_id": grant["client_id"],
                "expires_at": self.state.now() + TOKEN_LIFETIME,
            }
            grant["tokens"].append(token)
        return token

    def token_info(self, provider: str, schemes: tuple[str, ...]) -> dict | None:
        token = self.bearer_token(schemes)
        if token is None:
            return None
        with self.state.lock:
            info = self.state.tokens.get(token)
            if info is None or info["provider"] != provider or \
                    self.state.now() > info["expires_at"]:
                return None
            return copy.deepcopy(info)

    # --- Google ------------------------------------------------------------------------------

    def google_authorize(self):
        params = self.single_params(self.raw_query)
        self.record("google", params)
        self.authorize("google", params, require_pkce=True)

    def google_token(self):
        form = self.form()
        self.record("google", form)
        headers = {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
                   "Pragma": "no-cache"}
        if form.get("grant_type") != "authorization_code":
            self.send_json(400, {"error": "unsupported_grant_type",
                                 "error_description": "Invalid grant_type: "
                                 + form.get("grant_type", "")}, headers)
            return
        grant, error = self.redeem("google", form)
        if error:
            self.send_json(error[2], {"error": error[0], "error_description": error[1]}, headers)
            return
        access_token = self.issue_access_token("google", grant, "ya29.")
        answer = {"access_token": access_token, "expires_in": TOKEN_LIFETIME,
                  "token_type": "Bearer", "scope": grant["scope"]}
        if "openid" in grant["scope"].split():
            answer["id_token"] = self.id_token(grant, access_token)
        self.send_json(200, answer, headers)

    def id_token(self, grant: dict, access_token: str) -> str:
        user = grant["user"]
        scopes = grant["scope"].split()
        with self.state.lock:
            now = int(self.state.now())
            issuer = self.state.issuer()
            key = self.state.keys[-1]
        digest = hashlib.sha256(access_token.encode("ascii")).digest()
        claims = {
            "iss": issuer,
            "azp": grant["client_id"],
            "aud": grant["client_id"],
            "sub": str(user["sub"]),
            "at_hash": b64url(digest[:16]),
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
        }
        if "email" in scopes:
            claims["email"] = user.get("email")
            claims["email_verified"] = bool(user.get("email_verified"))
        if "profile" in scopes:
            for name in ("name", "picture", "given_name", "family_name"):
                if user.get(name) is not None:
                    claims[name] = user[name]
        if grant["nonce"] is not None:
            claims["nonce"] = grant["nonce"]
        return key.sign_jwt(claims)

    def google_certs(self):
        with self.state.lock:
            keys = [key.jwk() for key in self.state.keys]
        self.send_json(200, {"keys": keys}, {"Cache-Control": "public, max-age=300"})

    def google_userinfo(self):
        self.record("google")
        info = self.token_info("google", ("bearer",))
        if info is None:
            self.send_json(401, {"error": "invalid_request",
                                 "error_description": "Invalid Credentials"},
                           {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                                                'error="invalid_token"'})
            return
        user = info["user"]
        scopes = info["scope"].split()
        answer = {"sub": str(user["sub"])}
        if "email" in scopes:
            answer["email"] = user.get("email")
            answer["email_verified"] = bool(user.get("email_verified"))
        if "profile" in scopes:
            for name in ("name", "picture", "given_name", "family_name"):
                if user.get(name) is not None:
                    answer[name] = user[name]
        self.send_json(200, answer)

    def google_discovery(self):
        base = f"{self.state.base_url}/google"
        with self.state.lock:
            issuer = self.state.issuer()
        self.send_json(200, {
            "issuer": issuer,
            "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/oauth2/v3/userinfo",
            "jwks_uri": f"{base}/oauth2/v3/certs",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                      "client_secret_basic"],
            "claims_supported": ["aud", "email", "email_verified", "exp", "family_name",
                                 "given_name", "iat", "iss", "name", "picture", "sub"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
        })

    # --- GitHub ------------------------------------------------------------------------------

    def github_authorize(self):
        params = self.single_params(self.raw_query)
        self.record("github", params)
        self.authorize("github", params, require_pkce=False)

    def github_token(self):
        form = self.form()
        self.record("github", form)
        wants_json = "application/json" in self.headers.get("Accept", "").lower()

        def answer(fields: dict):
            if wants_json:
                self.send_json(200, fields)
            else:
                self.send(200, "application/x-www-form-urlencoded; charset=utf-8",
                          urllib.parse.urlencode(fields).encode())

        grant, error = self.redeem("github", form)
        if error:
            fields = {"error": error[0], "error_description": error[1],
                      "error_uri": GITHUB_ERROR_URI + "#" + error[0].replace("_", "-")}
            if error[2] != 200:
                self.send_json(error[2], fields)
            else:
                answer(fields)
            return
        token = self.issue_access_token("github", grant, "gho_")
        scopes = ",".join(s for s in re.split(r"[ ,]+", grant["scope"]) if s)
        with self.state.lock:
            self.state.tokens[token]["scope"] = scopes
        answer({"access_token": token, "token_type": "bearer", "scope": scopes})

    def github_api_auth(self) -> dict | None:
        self.record("github")
        info = self.token_info("github", ("bearer", "token"))
        if info is None:
            self.send_json(401, {"message": "Bad credentials",
                                 "documentation_url": "https://docs.github.com/rest",
                                 "status": "401"})
        return info

    def github_user(self):
        info = self.github_api_auth()
        if info is None:
            return
        user = info["user"]
        self.send_json(200, {
            "login": user["login"],
            "id": int(user["id"]),
            "node_id": b64url(f"04:User{user['id']}".encode()),
            "avatar_url": user.get("avatar_url"),
            "html_url": f"https://github.test/{user['login']}",
            "type": "User",
            "site_admin": False,
            "name": user.get("name"),
            "email": user.get("email"),
        }, {"X-OAuth-Scopes": info["scope"].replace(",", ", ")})

    def github_emails(self):
        info = self.github_api_auth()
        if info is None:
            return
        if not {"user", "user:email"} & set(info["scope"].split(",")):
            # GitHub hides the endpoint from tokens without the user:email scope.
            self.send_json(404, {"message": "Not Found",
                                 "documentation_url": "https://docs.github.com/rest",
                                 "status": "404"})
            return
        emails = [{"email": e["email"], "primary": bool(e.get("primary")),
                   "verified": bool(e.get("verified")), "visibility": e.get("visibility")}
                  for e in info["user"].get("emails", [])]
        self.send_json(200, emails)

    # --- control API -------------------------------------------------------------------------

    def provider_of(self, body: dict) -> str:
        provider = body.get("provider")
        if provider not in ("google", "github"):
            raise BadRequest('provider must be "google" or "github"')
        return provider

    def control_user(self):
        body = self.json_body()
        provider = self.provider_of(body)
        user = copy.deepcopy(DEFAULT_USERS[provider])
        fields = {k: v for k, v in body.items() if k != "provider"}
        if provider == "google":
            allowed = {"sub", "email", "email_verified", "name", "picture", "given_name",
                       "family_name"}
        else:
            allowed = {"id", "login", "name", "avatar_url", "email", "emails"}
        unknown = set(fields) - allowed
        if unknown:
            raise BadRequest(f"unknown user fields: {', '.join(sorted(unknown))}")
        if provider == "github":
            if "id" in fields and (isinstance(fields["id"], bool) or
                                   not isinstance(fields["id"], int)):
                raise BadRequest("id must be an integer")
            emails = fields.get("emails")
            if emails is not None:
                if not isinstance(emails, list) or not all(
                        isinstance(e, dict) and isinstance(e.get("email"), str) for e in emails):
                    raise BadRequest("emails must be a list of {email, primary, verified}")
                fields["emails"] = [{"email": e["email"], "primary": bool(e.get("primary")),
                                     "verified": bool(e.get("verified")),
                                     "visibility": e.get("visibility", "private"
                                                         if not e.get("primary") else "public")}
                                    for e in emails]
                if "email" not in fields:
                    primary = [e for e in fields["emails"]
                               if e["primary"] and e["visibility"] == "public"]
                    fields["email"] = primary[0]["email"] if primary else None
            elif "email" in fields:
                fields["emails"] = ([{"email": fields["email"], "primary": True,
                                      "verified": True, "visibility": "public"}]
                                    if fields["email"] else [])
        elif "sub" in fields:
            fields["sub"] = str(fields["sub"])
        user.update(fields)
        with self.state.lock:
            self.state.users[provider] = user
        self.send_json(200, {"provider": provider, "user": user})

    def control_deny(self):
        body = self.json_body()
        provider = self.provider_of(body)
        with self.state.lock:
            self.state.deny[provider] = bool(body.get("deny", True))
        self.send_json(200, {"provider": provider, "deny": self.state.deny[provider]})

    def control_client(self):
        body = self.json_body()
        provider = self.provider_of(body)
        client_id, secret = body.get("client_id"), body.get("client_secret")
        if not isinstance(client_id, str) or not client_id or not isinstance(secret, str):
            raise BadRequest("client_id and client_secret are required strings")
        with self.state.lock:
            self.state.clients[provider][client_id] = secret
        self.send_json(200, {"provider": provider, "client_id": client_id})

    def control_config(self):
        body = self.json_body()
        issuer = body.get("google_issuer")
        if issuer is not None and not isinstance(issuer, str):
            raise BadRequest("google_issuer must be a string or null")
        with self.state.lock:
            self.state.google_issuer = issuer or None
            current = self.state.issuer()
        self.send_json(200, {"google_issuer": current})

    def control_advance(self):
        body = self.json_body()
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise BadRequest("seconds must be a number")
        with self.state.lock:
            self.state.clock_offset += float(seconds)
            offset = self.state.clock_offset
        self.send_json(200, {"clock_offset": offset})

    def control_reset(self):
        with self.state.lock:
            self.state.reset_locked()
        self.send_json(200, {"reset": True})

    def control_rotate_key(self):
        with self.state.lock:
            key = self.state.add_key()
            kids = [k.kid for k in self.state.keys]
        self.send_json(200, {"kid": key.kid, "kids": kids})

    def control_requests(self):
        with self.state.lock:
            entries = copy.deepcopy(self.state.requests)
        self.send_json(200, entries)

    def control_clear_requests(self):
        with self.state.lock:
            self.state.requests.clear()
        self.send_json(200, {"cleared": True})

    def control_health(self):
        self.send_json(200, {"status": "ok"})


def add_query(uri: str, params: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(uri)
    query = parts.query + ("&" if parts.query else "") + urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def make_server(port: int, issuer: str | None, verbose: bool = False) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"state": State(issuer), "verbose": verbose})
    server = Server(("127.0.0.1", port), handler)
    handler.state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--google-issuer", default=None,
                        help="the id_token iss (default http://127.0.0.1:PORT/google)")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)
    server = make_server(args.port, args.google_issuer, args.verbose)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


# --- the test-side launcher ---------------------------------------------------------------------


class OAuthProvider:
    """A running fake (a child process) and small helpers for its control API."""

    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.google_base = f"{self.url}/google"
        self.github_base = f"{self.url}/github"
        self.google_issuer = self.google_base  # unless configure(google_issuer=...) changed it

    def control(self, path: str, body: dict | None = None, method: str | None = None):
        """Calls /_control/<path> and returns the decoded JSON answer (raises on non-2xx)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_control/{path}", data=data,
            method=method or ("POST" if body is not None else "GET"),
            headers={"Content-Type": "application/json"} if data is not None else {})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def set_user(self, provider: str, **fields):
        return self.control("user", {"provider": provider, **fields})["user"]

    def deny(self, provider: str, deny: bool = True):
        return self.control("deny", {"provider": provider, "deny": deny})

    def add_client(self, provider: str, client_id: str, client_secret: str):
        return self.control("client", {"provider": provider, "client_id": client_id,
                                       "client_secret": client_secret})

    def configure(self, google_issuer: str | None = None):
        self.google_issuer = self.control("config", {"google_issuer": google_issuer})[
            "google_issuer"]
        return self.google_issuer

    def advance(self, seconds: float):
        return self.control("advance", {"seconds": seconds})

    def rotate_key(self) -> str:
        return self.control("rotate-key", {})["kid"]

    def requests(self) -> list[dict]:
        return self.control("requests")

    def clear_requests(self):
        return self.control("requests", method="DELETE")

    def reset(self):
        self.google_issuer = self.google_base
        return self.control("reset", {})

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()


def start_oauth_provider(port: int = 0, google_issuer: str | None = None,
                         timeout: float = 15.0, verbose: bool = False) -> OAuthProvider:
    """Launches this script as a child process on 127.0.0.1 and waits for its port line.
    Its stderr goes to the caller's stderr (pytest shows it for failing tests)."""
    args = [sys.executable, __file__, "--port", str(port)]
    if google_issuer:
        args += ["--google-issuer", google_issuer]
    if verbose:
        args.append("--verbose")
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=None, text=True)
    result: dict = {}

    def read_port_line():
        line = proc.stdout.readline()
        try:
            result["port"] = int(json.loads(line)["port"])
        except (ValueError, KeyError, TypeError):
            result["line"] = line

    reader = threading.Thread(target=read_port_line, daemon=True)
    reader.start()
    reader.join(timeout)
    if "port" not in result:
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"the fake OAuth provider did not start within {timeout}s "
                           f"(exit code {proc.poll()}, first line {result.get('line')!r})")
    provider = OAuthProvider(proc, result["port"])
    if google_issuer:
        provider.google_issuer = google_issuer
    return provider


if __name__ == "__main__":
    sys.exit(main())
