"""The auth service, black-box: accounts, sessions, tokens, keys, profiles and user events, on
SQLite (embedded) and on the stack's PostgreSQL + Kafka. OAuth is in test_auth_oauth.py."""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from auth_support import (post_oversized, private_schema, SCHEMAS, STRONG_PASSWORD, AuthClient, b64url, dump_topic, jwt_parts,
                          new_ec_key_pem, set_cookies, sign_es256, unique_email, verify_es256)
from conftest import http_get

FAST_HASHING = {"INKWELL_ARGON2_OPSLIMIT": "1", "INKWELL_ARGON2_MEMLIMIT_KIB": "8192"}


def serve_auth(inkwell, backend: str, request, database_url: str | None = None, **overrides):
    """Starts the auth service alone: SQLite in the test's data dir, or a private schema of the
    stack's PostgreSQL (or `database_url`, to share one between two processes) with Kafka."""
    settings = dict(FAST_HASHING)
    if backend == "postgres":
        stack = request.getfixturevalue("stack")
        settings["INKWELL_AUTH_DATABASE_URL"] = database_url or private_schema(
            request, stack["INKWELL_AUTH_DATABASE_URL"])
        settings["KAFKA_BROKERS"] = stack["KAFKA_BROKERS"]
    settings.update(overrides)
    process = inkwell.serve("--services=auth", **settings)
    return process, AuthClient(process.port("auth"))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def auth(inkwell, backend, request) -> AuthClient:
    return serve_auth(inkwell, backend, request)[1]


def test_register_login_me_refresh_reuse_logout(auth: AuthClient):
    email = unique_email("story")
    created = auth.register(email, name="  Ann Lee  ")
    assert created.status == 201, created
    body = created.json()
    user = body["user"]
    assert user["email"] == email[: email.index("@")] + email[email.index("@"):].lower()
    assert user["name"] == "Ann Lee" and user["username"].startswith("ann_lee")
    assert user["version"] == 1 and "passwordHash" not in user and "password" not in json.dumps(body)
    assert body["tokenType"] == "Bearer" and body["expiresIn"] == 900
    cookie = set_cookies(created)["inkwell_refresh"]
    assert cookie["httponly"] and cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/api/auth" and cookie["max-age"] == str(30 * 24 * 3600)
    assert not cookie["secure"]  # plain HTTP here; Secure comes with TLS
    assert created.header("Cache-Control") == "no-store"

    header, claims = jwt_parts(body["accessToken"])
    assert header["alg"] == "ES256" and header["kid"]
    assert claims["sub"] == user["id"] and claims["email"] == user["email"]
    assert claims["name"] == "Ann Lee" and claims["iss"] == "inkwell" and claims["aud"] == "inkwell"
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]

    me = auth.request("GET", "/users/me", token=body["accessToken"])
    assert me.status == 200 and me.json()["id"] == user["id"]

    # Login from a second "browser": its own session.
    other = AuthClient(auth.port)
    login = other.login(email.upper().replace("EXAMPLE.ORG", "example.org"))
    assert login.status == 200, login
    assert login.json()["user"]["id"] == user["id"]

    first_refresh = auth.cookies["inkwell_refresh"]
    rotated = auth.request("POST", "/auth/refresh")
    assert rotated.status == 200, rotated
    second_refresh = auth.cookies["inkwell_refresh"]
    assert second_refresh != first_refresh
    assert auth.request("GET", "/users/me", token=rotated.json()["accessToken"]).status == 200

    # The rotated token presented again (a thief replaying it): refused, and the whole family
    # ends, including the newest token.
    thief = AuthClient(auth.port)
    thief.cookies["inkwell_refresh"] = first_refresh
    replay = thief.request("POST", "/auth/refresh")
    assert replay.status == 401 and replay.json()["error"]["code"] == "invalid_refresh_token"
    again = auth.request("POST", "/auth/refresh")
    assert again.status == 401, "the family was revoked: the newest token must not work either"

    # The other browser's session is a different family and still works, until it logs out.
    assert other.request("POST", "/auth/refresh").status == 200
    kept = other.cookies["inkwell_refresh"]
    out = other.request("POST", "/auth/logout")
    assert out.status == 204
    assert set_cookies(out)["inkwell_refresh"]["max-age"] == "0"
    other.cookies["inkwell_refresh"] = kept
    assert other.request("POST", "/auth/refresh").status == 401
    assert AuthClient(auth.port).request("POST", "/auth/refresh").status == 401  # no cookie


def test_invalid_registrations_get_422_per_field_and_create_nothing(auth: AuthClient):
    email = unique_email("invalid")
    cases = [
        ({"email": "not-an-email", "password": STRONG_PASSWORD, "name": "A"}, {"email"}),
        ({"email": email, "password": "short", "name": "A"}, {"password"}),
        ({"email": email, "password": "password123", "name": "A"}, {"password"}),
        ({"email": email, "password": "x" * 257, "name": "A"}, {"password"}),
        ({"email": email, "password": STRONG_PASSWORD, "name": "   "}, {"name"}),
        ({"email": email, "password": STRONG_PASSWORD, "name": "n" * 81}, {"name"}),
        ({"email": email, "password": STRONG_PASSWORD, "name": "A", "username": "No!"},
         {"username"}),
        ({"email": email, "password": STRONG_PASSWORD, "name": "A", "admin": True}, {"admin"}),
        ({"email": 42, "password": None, "name": ["x"]}, {"email", "password", "name"}),
        ({}, {"email", "password", "name"}),
    ]
    for body, fields in cases:
        response = auth.request("POST", "/auth/register", body)
        assert response.status == 422, (body, response)
        error = response.json()["error"]
        assert error["code"] == "validation_failed" and error["correlationId"]
        assert set(error["details"]) == fields, (body, error)
    # None of them created the account.
    assert auth.login(email).status == 401
    assert auth.register(email).status == 201


def test_duplicate_email_is_409_regardless_of_case(auth: AuthClient):
    email = unique_email("dup")
    assert auth.register(email).status == 201
    again = AuthClient(auth.port).register(email.upper(), name="Someone Else")
    assert again.status == 409 and again.json()["error"]["code"] == "email_taken"
    taken = auth.register(unique_email(), username=auth.register(unique_email())
                          .json()["user"]["username"])
    assert taken.status == 409 and taken.json()["error"]["code"] == "username_taken"


def test_concurrent_registrations_of_one_email_make_one_account(auth: AuthClient):
    email = unique_email("race")
    statuses: list[int] = []
    lock = threading.Lock()

    def register():
        status = AuthClient(auth.port).register(email).status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [201] + [409] * 7, statuses


def test_usernames_are_derived_unique_and_can_be_chosen(auth: AuthClient):
    tag = os.urandom(3).hex()
    first = auth.register(name=f"Grace Hopper {tag}").json()["user"]
    second = AuthClient(auth.port).register(name=f"Grace Hopper {tag}").json()["user"]
    assert first["username"] == f"grace_hopper_{tag}"
    assert second["username"] != first["username"] and second["username"].startswith(first["username"])
    chosen = AuthClient(auth.port).register(username=f"gh_{tag}").json()["user"]
    assert chosen["username"] == f"gh_{tag}"
    by_handle = auth.request("GET", f"/users/@gh_{tag}")
    assert by_handle.status == 200 and by_handle.json()["id"] == chosen["id"]


def test_wrong_password_and_unknown_email_look_the_same(inkwell, backend, request):
    # Real Argon2id cost here (the default limits), so the time comparison means something.
    _, auth = serve_auth(inkwell, backend, request, INKWELL_ARGON2_OPSLIMIT=None,
                         INKWELL_ARGON2_MEMLIMIT_KIB=None, INKWELL_AUTH_LOCKOUT_FAILURES="100",
                         INKWELL_AUTH_LOCKOUT_IP_FAILURES="100")
    email = unique_email("timing")
    assert auth.register(email).status == 201

    def attempt(address: str) -> tuple[float, dict]:
        started = time.monotonic()
        response = AuthClient(auth.port).login(address, "wrong-password-42")
        elapsed = time.monotonic() - started
        assert response.status == 401
        error = response.json()["error"]
        return elapsed, {"code": error["code"], "message": error["message"]}

    wrong = [attempt(email) for _ in range(5)]
    unknown = [attempt(unique_email("nobody")) for _ in range(5)]
    assert {json.dumps(e) for _, e in wrong} == {json.dumps(e) for _, e in unknown}
    wrong_median = statistics.median(t for t, _ in wrong)
    unknown_median = statistics.median(t for t, _ in unknown)
    # Without the dummy hash an unknown email answers in ~1 ms against ~50 ms for a wrong
    # password; with it both pay one Argon2id verification.
    assert unknown_median > wrong_median / 3, (wrong_median, unknown_median)


def test_repeated_failures_lock_the_account_then_the_address(inkwell, backend, request):
    _, auth = serve_auth(inkwell, backend, request, INKWELL_AUTH_LOCKOUT_FAILURES="3",
                         INKWELL_AUTH_LOCKOUT_IP_FAILURES="6",
                         INKWELL_AUTH_LOCKOUT_WINDOW_SECONDS="600")
    victim = unique_email("victim")
    assert auth.register(victim).status == 201
    for _ in range(3):
        assert auth.login(victim, "not-the-password").status == 401
    locked = auth.login(victim)  # even the right password waits out the window
    assert locked.status == 429 and locked.json()["error"]["code"] == "too_many_attempts"
    # Retry-After is the rest of the lockout window, not a token second.
    assert 590 <= int(locked.header("Retry-After")) <= 600
    # Another account from the same address is not locked yet; three more failures on other
    # emails lock the address as a whole.
    bystander = unique_email("bystander")
    assert auth.register(bystander).status == 201
    for _ in range(3):
        assert auth.login(unique_email("guess"), "whatever-123").status == 401
    assert auth.login(bystander).status == 429


@pytest.fixture
def keyed_auth(inkwell, backend, request, tmp_path):
    """An auth service signing with a key the test also holds, so tokens with bad claims can be
    made with the right key."""
    key = new_ec_key_pem(tmp_path / "signing.pem")
    process, client = serve_auth(inkwell, backend, request,
                                 JWT_PRIVATE_KEY_FILE=str(tmp_path / "signing.pem"))
    return client, key


def test_tokens_are_checked_strictly(keyed_auth):
    auth, key = keyed_auth
    created = auth.register().json()
    kid = jwt_parts(created["accessToken"])[0]["kid"]
    user_id = created["user"]["id"]
    now = int(time.time())
    good = {"sub": user_id, "email": "x@example.org", "name": "X", "iss": "inkwell",
            "aud": "inkwell", "iat": now, "exp": now + 600}
    # A token the test signs with the service's own key and good claims is accepted: the cases
    # below fail for the reason each names, not for the signature.
    assert auth.request("GET", "/users/me", token=sign_es256(key, good, kid)).status == 200

    other_key = ec.generate_private_key(ec.SECP256R1())
    head = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    body = b64url(json.dumps(good).encode())
    bad_tokens = {
        "alg none": f"{head}.{body}.",
        "wrong key": sign_es256(other_key, good, kid),
        "wrong kid": sign_es256(key, good, "not-a-known-kid"),
        "expired": sign_es256(key, {**good, "iat": now - 4000, "exp": now - 3000}, kid),
        "not yet valid": sign_es256(key, {**good, "nbf": now + 3000}, kid),
        "wrong audience": sign_es256(key, {**good, "aud": "someone-else"}, kid),
        "wrong issuer": sign_es256(key, {**good, "iss": "evil"}, kid),
        "no exp": sign_es256(key, {k: v for k, v in good.items() if k != "exp"}, kid),
        "HS256": sign_es256(key, good, kid, alg="HS256"),
        "tampered": created["accessToken"][:-6] + ("AAAAAA" if not created["accessToken"]
                                                   .endswith("AAAAAA") else "BBBBBB"),
        "garbage": "a.b.c",
        "huge": "x" * 9000,
    }
    for name, token in bad_tokens.items():
        response = auth.request("GET", "/users/me", token=token)
        assert response.status == 401, (name, response)
        assert response.json()["error"]["code"] == "invalid_token", name
    missing = auth.request("GET", "/users/me")
    assert missing.status == 401 and missing.json()["error"]["code"] == "unauthorized"
    basic = auth.request("GET", "/users/me", headers={"Authorization": "Basic abc"})
    assert basic.status == 401


def test_jwks_publishes_the_key_that_signs(auth: AuthClient):
    jwks = auth.request("GET", "/.well-known/jwks.json")
    assert jwks.status == 200
    keys = jwks.json()["keys"]
    token = auth.register().json()["accessToken"]
    kid = jwt_parts(token)[0]["kid"]
    [jwk] = [k for k in keys if k["kid"] == kid]
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and jwk["alg"] == "ES256"
    assert "d" not in jwk, "the private part must never be published"
    assert verify_es256(jwk, token)


def test_the_generated_key_survives_a_restart(inkwell, data_dir):
    first = inkwell.serve("--services=auth", **FAST_HASHING)
    client = AuthClient(first.port("auth"))
    token = client.register().json()["accessToken"]
    key_file = data_dir / "jwt-signing-key.pem"
    assert key_file.exists() and (key_file.stat().st_mode & 0o077) == 0
    first.close()
    second = inkwell.serve("--services=auth", **FAST_HASHING)
    again = AuthClient(second.port("auth"))
    assert again.request("GET", "/users/me", token=token).status == 200


def test_key_rotation_verifies_both_and_lists_both(inkwell, backend, request, tmp_path):
    new_ec_key_pem(tmp_path / "old.pem")
    shared = None
    if backend == "postgres":
        shared = private_schema(request, request.getfixturevalue("stack")[
            "INKWELL_AUTH_DATABASE_URL"])
    _, before = serve_auth(inkwell, backend, request, shared,
                           JWT_PRIVATE_KEY_FILE=str(tmp_path / "old.pem"))
    old_token = before.register().json()["accessToken"]
    old_kid = jwt_parts(old_token)[0]["kid"]
    new_ec_key_pem(tmp_path / "new.pem")
    _, after = serve_auth(inkwell, backend, request, shared,
                          JWT_PRIVATE_KEY_FILE=f"{tmp_path / 'new.pem'},{tmp_path / 'old.pem'}")
    kids = {k["kid"] for k in after.request("GET", "/.well-known/jwks.json").json()["keys"]}
    new_token = after.register().json()["accessToken"]
    new_kid = jwt_parts(new_token)[0]["kid"]
    assert kids == {old_kid, new_kid} and new_kid != old_kid
    assert after.request("GET", "/users/me", token=old_token).status == 200
    assert after.request("GET", "/users/me", token=new_token).status == 200


def test_bad_key_file_is_a_startup_error(inkwell, tmp_path):
    (tmp_path / "bad.pem").write_text("not a key")
    done = inkwell.run("serve", "--services=auth", JWT_PRIVATE_KEY_FILE=str(tmp_path / "bad.pem"))
    assert done.returncode == 2 and "JWT_PRIVATE_KEY_FILE" in done.stderr
    done = inkwell.run("serve", "--services=auth", OAUTH_GITHUB_CLIENT_ID="id-without-secret")
    assert done.returncode == 2 and "OAUTH_GITHUB_CLIENT_SECRET" in done.stderr


def test_profiles_public_private_and_owner_only_changes(auth: AuthClient):
    ann = auth.register(name="Ann Lee").json()
    bob_client = AuthClient(auth.port)
    bob = bob_client.register(name="Bob Roe").json()
    token = ann["accessToken"]
    ann_id = ann["user"]["id"]

    public = auth.request("GET", f"/users/{ann_id}").json()
    assert set(public) == {"id", "username", "name", "avatarUrl", "createdAt"}
    assert auth.request("GET", "/users/00000000-0000-4000-8000-000000000000").status == 404
    assert auth.request("GET", "/users/not-a-uuid").status == 404
    assert auth.request("GET", "/users/@no_such_handle_x").status == 404

    changed = auth.request("PATCH", f"/users/{ann_id}", {
        "name": "Ann Q. Lee", "avatarUrl": "https://cdn.example.org/ann.png",
        "preferences": {"theme": "dark"}}, token=token)
    assert changed.status == 200, changed
    assert changed.json()["version"] == 2 and changed.json()["name"] == "Ann Q. Lee"
    assert changed.json()["preferences"] == {"theme": "dark"}
    # The same values again change nothing and do not bump the version.
    same = auth.request("PATCH", f"/users/{ann_id}", {"name": "Ann Q. Lee"}, token=token)
    assert same.json()["version"] == 2
    cleared = auth.request("PATCH", f"/users/{ann_id}", {"avatarUrl": None}, token=token)
    assert cleared.json()["avatarUrl"] is None and cleared.json()["version"] == 3

    forbidden = auth.request("PATCH", f"/users/{bob['user']['id']}", {"name": "Pwned"},
                             token=token)
    assert forbidden.status == 403 and forbidden.json()["error"]["code"] == "forbidden"
    assert auth.request("GET", f"/users/{bob['user']['id']}").json()["name"] == "Bob Roe"
    assert auth.request("PATCH", f"/users/{ann_id}", {"name": "x"}).status == 401

    for body, field in [({"avatarUrl": "javascript:alert(1)"}, "avatarUrl"),
                        ({"preferences": [1]}, "preferences"),
                        ({"preferences": {"k": "x" * 9000}}, "preferences"),
                        ({"name": ""}, "name"), ({"username": "UPPER"}, "username"),
                        ({"email": "new@example.org"}, "email"), ({"version": 99}, "version")]:
        response = auth.request("PATCH", f"/users/{ann_id}", body, token=token)
        assert response.status == 422 and field in response.json()["error"]["details"], body
    taken = auth.request("PATCH", f"/users/{ann_id}", {"username": bob["user"]["username"]},
                         token=token)
    assert taken.status == 409
    me = auth.request("GET", "/users/me", token=token).json()
    assert me["version"] == 3 and me["name"] == "Ann Q. Lee" and me["username"] == ann["user"]["username"]


def test_hostile_input_gets_4xx_and_changes_nothing(auth: AuthClient):
    email = unique_email("hostile")
    assert auth.register(email).status == 201
    injections = ["' OR '1'='1", "x@example.org'; DROP TABLE users; --",
                  "\" OR 1=1 --", "admin'--@example.org"]
    for text in injections:
        assert auth.login(text, text).status in (401, 422)
        assert auth.login(email, text).status == 401
        assert auth.request("GET", "/users/@" + urllib.parse.quote(text, safe="")).status == 404
    # A name may contain quotes: stored and returned literally.
    odd = auth.register(name="Robert'); DROP TABLE users;--").json()["user"]
    assert auth.request("GET", f"/users/{odd['id']}").json()["name"] == "Robert'); DROP TABLE users;--"
    for raw, content_type, status in [
        (b"{not json", "application/json", 400),
        (b"[1,2,3]", "application/json", 400),
        (b"email=a&password=b", "application/x-www-form-urlencoded", 415),
        (b'{"email": "\xff\xfe", "password": "x", "name": "y"}', "application/json", 400),
        (b"{" + b'"a":' * 10000 + b"1" + b"}" * 10000, "application/json", 400),
    ]:
        response = auth.request("POST", "/auth/register", raw=raw,
                                headers={"Content-Type": content_type})
        assert response.status == status, (raw[:40], response)
    assert post_oversized(auth.port, "/auth/register", 4 << 20) == 413
    long_password = auth.login(email, "p" * 100_000)
    assert long_password.status in (401, 413, 422)
    # Still serving, and the account is intact.
    assert auth.login(email).status == 200
    assert http_get(auth.port, "/version").status == 200


def test_auth_metrics_count_what_happened(auth: AuthClient):
    email = unique_email("metrics")
    auth.register(email)
    auth.login(email)
    auth.login(email, "wrong-password-1")
    auth.request("POST", "/auth/refresh")
    text = http_get(auth.port, "/metrics").body.decode()
    def value(line_start: str) -> float:
        for line in text.splitlines():
            if line.startswith(line_start):
                return float(line.split()[-1])
        raise AssertionError(f"{line_start} not in /metrics")
    assert value("auth_registrations_total") >= 1
    assert value('auth_logins_total{result="ok"}') >= 1
    assert value('auth_logins_total{result="failed"}') >= 1
    assert value('auth_refreshes_total{result="ok"}') >= 1


def validate(event: dict):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SCHEMAS / f"{event['type']}.schema.json").read_text())
    jsonschema.validate(event, schema, format_checker=jsonschema.FormatChecker())


def test_user_events_match_their_schemas_with_growing_versions(inkwell, backend, request,
                                                               data_dir, inkwell_bin):
    process, auth = serve_auth(inkwell, backend, request)
    created = auth.register(name="Eve Events").json()
    user_id, token = created["user"]["id"], created["accessToken"]
    for name in ("Eve Two", "Eve Three"):
        assert auth.request("PATCH", f"/users/{user_id}", {"name": name}, token=token).status == 200
    if backend == "postgres":
        probe = str(Path(inkwell_bin).parent / "tests" / "tools" / "inkwell_events_probe")
        brokers = os.environ["KAFKA_BROKERS"]
        registered = dump_topic(probe, brokers, "user.registered", user_id, 1)
        updated = dump_topic(probe, brokers, "user.updated", user_id, 2)
    else:
        process.close()  # the outbox rows stay in the service's SQLite file
        db = sqlite3.connect(data_dir / "auth.db")
        rows = [json.loads(r[0]) for r in db.execute(
            "select payload from outbox where key = ? order by seq", (user_id,))]
        db.close()
        registered = [e for e in rows if e["type"] == "user.registered"]
        updated = [e for e in rows if e["type"] == "user.updated"]
    assert len(registered) == 1 and len(updated) == 2
    for event in registered + updated:
        validate(event)
        assert event["subject"] == user_id and event["source"] == "/auth"
    assert registered[0]["data"]["version"] == 1
    assert [e["data"]["version"] for e in updated] == [2, 3]
    assert [e["data"]["name"] for e in updated] == ["Eve Two", "Eve Three"]


def test_gateway_identity_headers_are_trusted_only_with_the_internal_token(inkwell, backend,
                                                                           request):
    secret = "internal-" + os.urandom(12).hex()
    _, auth = serve_auth(inkwell, backend, request, INKWELL_INTERNAL_TOKEN=secret,
                         INKWELL_AUTH_LOCKOUT_IP_FAILURES="2",
                         INKWELL_AUTH_LOCKOUT_FAILURES="100")
    user = auth.register().json()["user"]
    vouched = {"X-Internal-Token": secret, "X-User-Id": user["id"],
               "X-User-Email": user["email"], "X-User-Name": user["name"]}
    me = auth.request("GET", "/users/me", headers=vouched)
    assert me.status == 200 and me.json()["id"] == user["id"]
    # Without the token, or with a wrong one, the headers are ignored.
    for headers in ({**vouched, "X-Internal-Token": "wrong-" + secret},
                    {k: v for k, v in vouched.items() if k != "X-Internal-Token"}):
        response = auth.request("GET", "/users/me", headers=headers)
        assert response.status == 401, headers
    # The lockout counts the address the gateway forwards, not the gateway's own.
    for address in ("203.0.113.7", "203.0.113.7"):
        forwarded = {"X-Internal-Token": secret, "X-Forwarded-For": f"10.0.0.1, {address}"}
        assert auth.login(unique_email("x"), "wrong-password-9", headers=forwarded).status == 401
    blocked = {"X-Internal-Token": secret, "X-Forwarded-For": "203.0.113.7"}
    assert auth.login(user["email"], headers=blocked).status == 429
    other = {"X-Internal-Token": secret, "X-Forwarded-For": "198.51.100.9"}
    assert auth.login(user["email"], headers=other).status == 200
