"""The fake OAuth provider (tests/fakes/oauth_provider.py) itself, driven the way a real client
drives Google and GitHub: authorize, follow the redirect by hand, redeem the code with PKCE,
verify the id_token against the JWKS, call the user APIs."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

GOOGLE_CLIENT = ("google-client-id", "google-client-secret")
GITHUB_CLIENT = ("github-client-id", "github-client-secret")
REDIRECT = "http://127.0.0.1:9/auth/callback?from=test"


@pytest.fixture
def fake(oauth_provider):
    oauth_provider.reset()
    return oauth_provider


# --- a tiny client built on urllib -------------------------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 302 is the answer we want to read


OPENER = urllib.request.build_opener(NoRedirect)


def call(url: str, data: dict | bytes | None = None, headers: dict | None = None,
         method: str | None = None) -> tuple[int, dict, bytes]:
    if isinstance(data, dict):
        data = urllib.parse.urlencode(data).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pkce_pair() -> tuple[str, str]:
    verifier = b64url(os.urandom(32))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def authorize(base: str, path: str, **params) -> dict[str, str]:
    """Runs the authorize step and returns the query of the redirect it answered with."""
    status, headers, _ = call(f"{base}{path}?{urllib.parse.urlencode(params)}")
    assert status == 302, (status, headers)
    location = headers["Location"]
    assert location.startswith("http://127.0.0.1:9/auth/callback?from=test&")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def google_code(fake, challenge: str, state: str = "st-1", nonce: str | None = "n-1",
                scope: str = "openid email profile") -> str:
    params = dict(response_type="code", client_id=GOOGLE_CLIENT[0], redirect_uri=REDIRECT,
                  scope=scope, state=state, code_challenge=challenge,
                  code_challenge_method="S256")
    if nonce:
        params["nonce"] = nonce
    answer = authorize(fake.google_base, "/o/oauth2/v2/auth", **params)
    assert answer["state"] == state
    return answer["code"]


def google_token(fake, code: str, verifier: str, **overrides):
    form = dict(grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                client_id=GOOGLE_CLIENT[0], client_secret=GOOGLE_CLIENT[1],
                code_verifier=verifier)
    form.update(overrides)
    form = {k: v for k, v in form.items() if v is not None}
    status, headers, body = call(f"{fake.google_base}/token", form)
    assert headers["Content-Type"].startswith("application/json")
    return status, json.loads(body)


def verify_id_token(fake, token: str) -> tuple[dict, dict]:
    """Checks the RS256 signature with the key the JWKS lists under the header's kid."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    assert header["alg"] == "RS256"
    status, _, body = call(f"{fake.google_base}/oauth2/v3/certs")
    assert status == 200
    keys = {k["kid"]: k for k in json.loads(body)["keys"]}
    jwk = keys[header["kid"]]
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS256", "sig")
    public_key = rsa.RSAPublicNumbers(int.from_bytes(b64url_decode(jwk["e"]), "big"),
                                      int.from_bytes(b64url_decode(jwk["n"]), "big")).public_key()
    public_key.verify(b64url_decode(signature_b64), f"{header_b64}.{payload_b64}".encode(),
                      padding.PKCS1v15(), hashes.SHA256())
    return header, json.loads(b64url_decode(payload_b64))


# --- Google --------------------------------------------------------------------------------------


def test_discovery_document_points_at_the_fake(fake):
    status, _, body = call(f"{fake.google_base}/.well-known/openid-configuration")
    assert status == 200
    doc = json.loads(body)
    assert doc["issuer"] == fake.google_base == f"http://127.0.0.1:{fake.port}/google"
    assert doc["authorization_endpoint"] == f"{fake.google_base}/o/oauth2/v2/auth"
    assert doc["token_endpoint"] == f"{fake.google_base}/token"
    assert doc["jwks_uri"] == f"{fake.google_base}/oauth2/v3/certs"
    assert doc["userinfo_endpoint"] == f"{fake.google_base}/oauth2/v3/userinfo"
    assert doc["code_challenge_methods_supported"] == ["S256"]


def test_google_login_issues_a_verifiable_id_token(fake):
    verifier, challenge = pkce_pair()
    state = "a b/+=&?é"
    code = google_code(fake, challenge, state=state, nonce="nonce-42")
    status, answer = google_token(fake, code, verifier)
    assert status == 200, answer
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] > 3000
    assert answer["scope"] == "openid email profile"
    header, claims = verify_id_token(fake, answer["id_token"])
    assert header["kid"]
    assert claims["iss"] == fake.google_base
    assert claims["aud"] == GOOGLE_CLIENT[0]
    assert claims["sub"] == "110169484474386276334"
    assert claims["email"] == "ada@example.com" and claims["email_verified"] is True
    assert claims["name"] == "Ada Lovelace" and claims["picture"].startswith("https://")
    assert claims["nonce"] == "nonce-42"
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 60
    digest = hashlib.sha256(answer["access_token"].encode()).digest()
    assert claims["at_hash"] == b64url(digest[:16])

    status, _, body = call(f"{fake.google_base}/oauth2/v3/userinfo",
                           headers={"Authorization": f"Bearer {answer['access_token']}"})
    assert status == 200
    assert json.loads(body) == {"sub": claims["sub"], "email": "ada@example.com",
                                "email_verified": True, "name": "Ada Lovelace",
                                "given_name": "Ada", "family_name": "Lovelace",
                                "picture": claims["picture"]}


def test_a_tampered_id_token_does_not_verify(fake):
    verifier, challenge = pkce_pair()
    _, answer = google_token(fake, google_code(fake, challenge), verifier)
    header, payload, signature = answer["id_token"].split(".")
    claims = json.loads(b64url_decode(payload))
    claims["email"] = "mallory@example.com"
    forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])
    with pytest.raises(InvalidSignature):
        verify_id_token(fake, forged)


def test_userinfo_needs_a_valid_bearer_token(fake):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        status, response_headers, body = call(f"{fake.google_base}/oauth2/v3/userinfo",
                                              headers=headers)
        assert status == 401
        assert "invalid_token" in response_headers["WWW-Authenticate"]
        assert json.loads(body)["error"] == "invalid_request"


def test_pkce_mismatch_is_invalid_grant_and_burns_the_code(fake):
    verifier, challenge = pkce_pair()
    code = google_code(fake, challenge)
    other_verifier, _ = pkce_pair()
    status, answer = google_token(fake, code, other_verifier)
    assert (status, answer["error"]) == (400, "invalid_grant")
    assert answer["error_description"]
    status, answer = google_token(fake, code, verifier)
    assert (status, answer["error"]) == (400, "invalid_grant")


def test_missing_code_verifier_is_invalid_grant(fake):
    _, challenge = pkce_pair()
    status, answer = google_token(fake, google_code(fake, challenge), None)
    assert (status, answer["error"]) == (400, "invalid_grant")


def test_code_replay_is_invalid_grant_and_revokes_the_first_token(fake):
    verifier, challenge = pkce_pair()
    code = google_code(fake, challenge)
    status, first = google_token(fake, code, verifier)
    assert status == 200
    status, again = google_token(fake, code, verifier)
    assert (status, again["error"]) == (400, "invalid_grant")
    status, _, _ = call(f"{fake.google_base}/oauth2/v3/userinfo",
                        headers={"Authorization": f"Bearer {first['access_token']}"})
    assert status == 401


def test_expired_code_is_invalid_grant(fake):
    verifier, challenge = pkce_pair()
    code = google_code(fake, challenge)
    fake.advance(601)
    status, answer = google_token(fake, code, verifier)
    assert (status, answer["error"]) == (400, "invalid_grant")


def test_wrong_client_secret_is_invalid_client_401(fake):
    verifier, challenge = pkce_pair()
    status, answer = google_token(fake, google_code(fake, challenge), verifier,
                                  client_secret="wrong")
    assert (status, answer["error"]) == (401, "invalid_client")


def test_client_secret_basic_is_accepted(fake):
    verifier, challenge = pkce_pair()
    basic = base64.b64encode(":".join(GOOGLE_CLIENT).encode()).decode()
    form = dict(grant_type="authorization_code", code=google_code(fake, challenge),
                redirect_uri=REDIRECT, code_verifier=verifier)
    status, _, body = call(f"{fake.google_base}/token", form,
                           headers={"Authorization": f"Basic {basic}"})
    assert status == 200, body
    assert "id_token" in json.loads(body)


def test_redirect_uri_must_match_the_authorize_one(fake):
    verifier, challenge = pkce_pair()
    status, answer = google_token(fake, google_code(fake, challenge), verifier,
                                  redirect_uri="http://127.0.0.1:9/elsewhere")
    assert status == 400
    assert answer["error"] == "redirect_uri_mismatch"


def test_unsupported_grant_type(fake):
    status, answer = google_token(fake, "x", "y", grant_type="password")
    assert (status, answer["error"]) == (400, "unsupported_grant_type")


@pytest.mark.parametrize("change, status", [
    ({"client_id": "unknown-client"}, 401),
    ({"client_id": None}, 401),
    ({"response_type": "token"}, 400),
    ({"code_challenge_method": None}, 400),
    ({"code_challenge_method": "plain"}, 400),
    ({"code_challenge": None}, 400),
    ({"code_challenge": "short"}, 400),
    ({"redirect_uri": "javascript:alert(1)"}, 400),
    ({"redirect_uri": None}, 400),
    ({"scope": None}, 400),
])
def test_bad_authorize_requests_get_an_error_page(fake, change, status):
    _, challenge = pkce_pair()
    params = dict(response_type="code", client_id=GOOGLE_CLIENT[0], redirect_uri=REDIRECT,
                  scope="openid email", state="s", code_challenge=challenge,
                  code_challenge_method="S256")
    params.update(change)
    params = {k: v for k, v in params.items() if v is not None}
    got, headers, body = call(f"{fake.google_base}/o/oauth2/v2/auth?"
                              f"{urllib.parse.urlencode(params)}")
    assert got == status
    assert "Location" not in headers
    assert headers["Content-Type"].startswith("text/html")
    assert b"Error" in body


def test_denied_consent_redirects_with_access_denied(fake):
    fake.deny("google")
    _, challenge = pkce_pair()
    answer = authorize(fake.google_base, "/o/oauth2/v2/auth", response_type="code",
                       client_id=GOOGLE_CLIENT[0], redirect_uri=REDIRECT, scope="openid",
                       state="xyz", code_challenge=challenge, code_challenge_method="S256")
    assert answer == {"from": "test", "error": "access_denied", "state": "xyz"}
    fake.deny("google", False)
    assert "code" in authorize(fake.google_base, "/o/oauth2/v2/auth", response_type="code",
                               client_id=GOOGLE_CLIENT[0], redirect_uri=REDIRECT,
                               scope="openid", state="xyz", code_challenge=challenge,
                               code_challenge_method="S256")


def test_selected_user_is_returned_by_the_next_login(fake):
    fake.set_user("google", sub="42", email="grace@example.com", email_verified=False,
                  name="Grace Hopper", picture="https://pics.test/grace")
    verifier, challenge = pkce_pair()
    _, answer = google_token(fake, google_code(fake, challenge, nonce=None), verifier)
    _, claims = verify_id_token(fake, answer["id_token"])
    assert (claims["sub"], claims["email"], claims["email_verified"], claims["name"]) == \
        ("42", "grace@example.com", False, "Grace Hopper")
    assert "nonce" not in claims


def test_rotated_key_signs_new_tokens_and_jwks_lists_both(fake):
    verifier, challenge = pkce_pair()
    _, before = google_token(fake, google_code(fake, challenge), verifier)
    old_kid, _ = verify_id_token(fake, before["id_token"])
    new_kid = fake.rotate_key()
    body = call(f"{fake.google_base}/oauth2/v3/certs")[2]
    kids = [k["kid"] for k in json.loads(body)["keys"]]
    assert kids == [old_kid["kid"], new_kid]
    verifier, challenge = pkce_pair()
    _, after = google_token(fake, google_code(fake, challenge), verifier)
    header, _ = verify_id_token(fake, after["id_token"])
    assert header["kid"] == new_kid
    verify_id_token(fake, before["id_token"])  # the old key still verifies old tokens


def test_configured_issuer_is_used_in_tokens_and_discovery(fake):
    fake.configure(google_issuer="https://accounts.google.com")
    verifier, challenge = pkce_pair()
    _, answer = google_token(fake, google_code(fake, challenge), verifier)
    assert verify_id_token(fake, answer["id_token"])[1]["iss"] == "https://accounts.google.com"
    doc = json.loads(call(f"{fake.google_base}/.well-known/openid-configuration")[2])
    assert doc["issuer"] == "https://accounts.google.com"


# --- GitHub --------------------------------------------------------------------------------------


def github_code(fake, challenge: str, scope: str = "read:user user:email") -> str:
    answer = authorize(fake.github_base, "/login/oauth/authorize", client_id=GITHUB_CLIENT[0],
                       redirect_uri=REDIRECT, scope=scope, state="gh-state",
                       code_challenge=challenge, code_challenge_method="S256")
    assert answer["state"] == "gh-state"
    return answer["code"]


def github_token(fake, code: str, verifier: str | None, accept_json: bool = True, **overrides):
    form = dict(client_id=GITHUB_CLIENT[0], client_secret=GITHUB_CLIENT[1], code=code,
                redirect_uri=REDIRECT, code_verifier=verifier)
    form.update(overrides)
    form = {k: v for k, v in form.items() if v is not None}
    headers = {"Accept": "application/json"} if accept_json else {}
    status, response_headers, body = call(f"{fake.github_base}/login/oauth/access_token", form,
                                          headers=headers)
    if accept_json:
        assert response_headers["Content-Type"].startswith("application/json")
        return status, json.loads(body)
    assert response_headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    return status, dict(urllib.parse.parse_qsl(body.decode()))


def github_api(fake, path: str, token: str, scheme: str = "Bearer"):
    status, _, body = call(f"{fake.github_base}/api{path}",
                           headers={"Authorization": f"{scheme} {token}",
                                    "Accept": "application/vnd.github+json"})
    return status, json.loads(body)


def test_github_login_user_and_emails(fake):
    verifier, challenge = pkce_pair()
    status, answer = github_token(fake, github_code(fake, challenge), verifier)
    assert status == 200, answer
    assert answer["token_type"] == "bearer"
    assert answer["scope"] == "read:user,user:email"
    token = answer["access_token"]
    for scheme in ("Bearer", "token"):
        status, user = github_api(fake, "/user", token, scheme)
        assert status == 200
        assert user["id"] == 583231 and isinstance(user["id"], int)
        assert (user["login"], user["name"]) == ("octocat", "The Octocat")
        assert user["avatar_url"].startswith("https://")
        assert user["email"] == "octocat@example.com"
    status, emails = github_api(fake, "/user/emails", token)
    assert status == 200
    assert emails[0] == {"email": "octocat@example.com", "primary": True, "verified": True,
                         "visibility": "public"}


def test_github_selected_user_with_private_emails(fake):
    fake.set_user("github", id=7, login="hopper", name="Grace", avatar_url="https://a.test/7",
                  emails=[{"email": "old@example.com", "primary": False, "verified": False},
                          {"email": "grace@example.com", "primary": True, "verified": True,
                           "visibility": "private"}])
    verifier, challenge = pkce_pair()
    _, answer = github_token(fake, github_code(fake, challenge), verifier)
    _, user = github_api(fake, "/user", answer["access_token"])
    assert (user["id"], user["login"], user["email"]) == (7, "hopper", None)
    _, emails = github_api(fake, "/user/emails", answer["access_token"])
    assert [(e["email"], e["primary"], e["verified"]) for e in emails] == [
        ("old@example.com", False, False), ("grace@example.com", True, True)]


def test_github_emails_need_the_user_email_scope(fake):
    verifier, challenge = pkce_pair()
    _, answer = github_token(fake, github_code(fake, challenge, scope="read:user"), verifier)
    assert answer["scope"] == "read:user"
    status, body = github_api(fake, "/user/emails", answer["access_token"])
    assert status == 404 and body["message"] == "Not Found"


def test_github_bad_credentials(fake):
    for path in ("/user", "/user/emails"):
        status, body = github_api(fake, path, "gho_nope")
        assert (status, body["message"]) == (401, "Bad credentials")


def test_github_errors_are_http_200_like_github(fake):
    verifier, challenge = pkce_pair()
    code = github_code(fake, challenge)
    status, answer = github_token(fake, code, verifier, client_secret="wrong")
    assert (status, answer["error"]) == (200, "incorrect_client_credentials")
    status, answer = github_token(fake, "not-a-code", verifier)
    assert (status, answer["error"]) == (200, "bad_verification_code")
    status, answer = github_token(fake, code, pkce_pair()[0])  # PKCE mismatch
    assert (status, answer["error"]) == (200, "bad_verification_code")
    status, answer = github_token(fake, code, verifier)  # the code is burned now
    assert (status, answer["error"]) == (200, "bad_verification_code")


def test_github_answers_form_encoded_without_accept_json(fake):
    verifier, challenge = pkce_pair()
    code = github_code(fake, challenge)
    status, answer = github_token(fake, code, verifier, accept_json=False)
    assert status == 200
    assert answer["access_token"].startswith("gho_")
    assert (answer["token_type"], answer["scope"]) == ("bearer", "read:user,user:email")
    status, answer = github_token(fake, code, verifier, accept_json=False)
    assert (status, answer["error"]) == (200, "bad_verification_code")


def test_github_denied_consent(fake):
    fake.deny("github")
    answer = authorize(fake.github_base, "/login/oauth/authorize", client_id=GITHUB_CLIENT[0],
                       redirect_uri=REDIRECT, state="s1")
    assert answer["error"] == "access_denied" and answer["state"] == "s1"


# --- control API and robustness ----------------------------------------------------------------


def test_requests_are_recorded_without_secrets(fake):
    verifier, challenge = pkce_pair()
    google_token(fake, google_code(fake, challenge), verifier)
    entries = fake.requests()
    authorize_entry, token_entry = entries[-2], entries[-1]
    assert authorize_entry["path"] == "/google/o/oauth2/v2/auth"
    assert authorize_entry["params"]["code_challenge"] == challenge
    assert token_entry["path"] == "/google/token" and token_entry["method"] == "POST"
    assert token_entry["params"]["code_verifier"] == verifier
    assert token_entry["params"]["client_secret"] == "<redacted>"
    assert token_entry["content_type"] == "application/x-www-form-urlencoded"
    assert "google-client-secret" not in json.dumps(entries)
    fake.reset()
    assert fake.requests() == []


def test_added_client_can_log_in(fake):
    fake.add_client("google", "other-client", "other-secret")
    verifier, challenge = pkce_pair()
    answer = authorize(fake.google_base, "/o/oauth2/v2/auth", response_type="code",
                       client_id="other-client", redirect_uri=REDIRECT, scope="openid",
                       state="s", code_challenge=challenge, code_challenge_method="S256")
    status, token = google_token(fake, answer["code"], verifier, client_id="other-client",
                                 client_secret="other-secret")
    assert status == 200
    assert verify_id_token(fake, token["id_token"])[1]["aud"] == "other-client"


@pytest.mark.parametrize("path, body", [
    ("/_control/user", b"{not json"),
    ("/_control/user", b'{"provider": "myspace"}'),
    ("/_control/user", b'{"provider": "github", "id": "seven"}'),
    ("/_control/user", b'{"provider": "google", "shoe_size": 42}'),
    ("/_control/deny", b"[]"),
    ("/_control/advance", b'{"seconds": "soon"}'),
])
def test_control_api_rejects_garbage_with_400(fake, path, body):
    status, _, _ = call(f"{fake.url}{path}", body, headers={"Content-Type": "application/json"},
                        method="POST")
    assert status == 400


def test_garbage_never_takes_the_fake_down(fake):
    assert call(f"{fake.google_base}/token", b"\xff\xfe", method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 400
    assert call(f"{fake.google_base}/token", b'{"code": 1}', method="POST",
                headers={"Content-Type": "application/json"})[0] == 400
    assert call(f"{fake.google_base}/token", b"code=a&code=b", method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 400
    assert call(f"{fake.google_base}/o/oauth2/v2/auth?client_id=%ZZ&client_id=x")[0] == 400
    assert call(f"{fake.url}/nowhere")[0] == 404
    status, headers, _ = call(f"{fake.google_base}/token")
    assert status == 405 and headers["Allow"] == "POST"
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as raw:
        raw.sendall(b"POST /google/token HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as raw:
        raw.sendall(b"\x00\x01garbage\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.")
    assert fake.alive()
    assert call(f"{fake.url}/_control/health")[0] == 200


def test_keep_alive_serves_several_requests_on_one_connection(fake):
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/google/oauth2/v3/certs")
            response = conn.getresponse()
            assert response.status == 200
            assert int(response.headers["Content-Length"]) == len(response.read())
        conn.request("GET", "/github/api/user")
        response = conn.getresponse()
        assert response.status == 401 and response.headers["Content-Length"]
        response.read()
    finally:
        conn.close()
