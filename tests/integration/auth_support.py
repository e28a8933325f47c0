"""Helpers for the auth service's black-box tests: a small HTTP client that keeps the refresh
cookie like a browser would, JWT signing with test keys, and reading events back."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.parse
import uuid
from http.cookies import SimpleCookie
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                             encode_dss_signature)

from conftest import http_request

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "contracts" / "events"
STRONG_PASSWORD = "violet-tugboat-81"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_ec_key_pem(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key


def sign_es256(key: ec.EllipticCurvePrivateKey, claims: dict, kid: str | None,
               alg: str = "ES256") -> str:
    header = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode()))
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def verify_es256(jwk: dict, token: str) -> bool:
    x = int.from_bytes(b64url_decode(jwk["x"]), "big")
    y = int.from_bytes(b64url_decode(jwk["y"]), "big")
    public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    head, body, signature = token.split(".")
    raw = b64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        return True
    except Exception:  # noqa: BLE001 (cryptography raises InvalidSignature)
        return False


def jwt_parts(token: str) -> tuple[dict, dict]:
    head, body, _ = token.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(body))


def unique_email(tag: str = "user") -> str:
    return f"{tag}.{uuid.uuid4().hex[:12]}@Example.ORG"


def set_cookies(response) -> dict[str, dict]:
    """The Set-Cookie headers of a response: name -> {value, attributes (lower-case)}."""
    out = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            attributes = {k.lower(): v for k, v in morsel.items() if v}
            flags = [part.strip().lower() for part in header.split(";")[1:]]
            attributes["httponly"] = "httponly" in flags
            attributes["secure"] = "secure" in flags
            out[name] = {"value": morsel.value, **attributes}
    return out


class AuthClient:
    """Calls one auth service directly (as the gateway would, without the /api prefix) and keeps
    the cookies it sets, as a browser does."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body=None, token: str | None = None,
                headers: dict | None = None, raw: bytes | None = None, cookies: bool = True):
        all_headers = dict(headers or {})
        if body is not None:
            raw = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        if cookies and self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = http_request(self.port, method, path, headers=all_headers, body=raw,
                                timeout=20)
        for name, cookie in set_cookies(response).items():
            if cookie.get("max-age") == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie["value"]
        return response

    def register(self, email: str | None = None, password: str = STRONG_PASSWORD,
                 name: str = "Ann Lee", **extra):
        return self.request("POST", "/auth/register",
                            {"email": email or unique_email(), "password": password,
                             "name": name, **extra})

    def login(self, email: str, password: str = STRONG_PASSWORD, headers=None):
        return self.request("POST", "/auth/login", {"email": email, "password": password},
                            headers=headers)


def private_schema(request, database_url: str) -> str:
    """A fresh PostgreSQL schema for one test, dropped afterwards: the URL selects it through
    search_path, so the service's tables (and its sign-in throttle counters) are the test's own."""
    name = "t_" + uuid.uuid4().hex[:16]
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", database_url, "-c"]
    subprocess.run(psql + [f"CREATE SCHEMA {name}"], check=True, capture_output=True, timeout=30)
    request.addfinalizer(lambda: subprocess.run(psql + [f"DROP SCHEMA {name} CASCADE"],
                                                capture_output=True, timeout=30))
    separator = "&" if "?" in database_url else "?"
    return f"{database_url}{separator}options=-csearch_path%3D{name}"


def dump_topic(probe: str, brokers: str, topic: str, key: str, expect: int,
               timeout: float = 30.0) -> list[dict]:
    """The CloudEvents on `topic` with message key `key`, read back from Kafka with
    inkwell_events_probe; polls until at least `expect` are there."""
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run([probe, "dump", "--brokers", brokers, "--topic", topic,
                               "--key", key], capture_output=True, text=True, timeout=60)
        # A broker paused by another test (the Kafka suite pauses it) answers late: try again.
        if done.returncode != 0:
            assert time.monotonic() < deadline, done.stderr
            continue
        events = [json.loads(json.loads(line)["payload"]) for line in done.stdout.splitlines()]
        if len(events) >= expect or time.monotonic() > deadline:
            return events
        time.sleep(0.2)  # a poll interval: the relay publishes asynchronously


def post_oversized(port: int, path: str, size: int) -> int:
    """POSTs a JSON body of `size` bytes the way a client that ignores early answers does, and
    returns the status the server sent (it may answer and close before the body is through)."""
    import socket
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        try:
            sock.sendall(b"{" + b" " * (size - 2) + b"}")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while b"\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except ConnectionResetError:
            pass
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def location_path(response) -> tuple[str, dict[str, str]]:
    """The path and query parameters of a redirect's Location."""
    location = response.header("Location")
    assert location, f"no Location in {response}"
    parts = urllib.parse.urlsplit(location)
    return parts.path, dict(urllib.parse.parse_qsl(parts.query))
