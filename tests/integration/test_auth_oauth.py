"""OAuth 2.0 sign-in with Google and GitHub against the local fake provider
(tests/fakes/oauth_provider.py), which speaks the real protocol: the auth service's own client
code does the PKCE exchange, verifies Google's ID token against the fake's JWKS, and reads
GitHub's user API."""

from __future__ import annotations

import urllib.parse

import pytest

from auth_support import private_schema, AuthClient, location_path, set_cookies, unique_email
from conftest import http_request

FAST_HASHING = {"INKWELL_ARGON2_OPSLIMIT": "1", "INKWELL_ARGON2_MEMLIMIT_KIB": "8192"}
PUBLIC_URL = "http://app.inkwell.test"


def provider_settings(fake) -> dict[str, str]:
    return {
        "INKWELL_PUBLIC_URL": PUBLIC_URL,
        "OAUTH_GOOGLE_CLIENT_ID": "google-client-id",
        "OAUTH_GOOGLE_CLIENT_SECRET": "google-client-secret",
        "OAUTH_GOOGLE_AUTH_URL": f"{fake.google_base}/o/oauth2/v2/auth",
        "OAUTH_GOOGLE_TOKEN_URL": f"{fake.google_base}/token",
        "OAUTH_GOOGLE_JWKS_URL": f"{fake.google_base}/oauth2/v3/certs",
        "OAUTH_GOOGLE_ISSUER": fake.google_issuer,
        "OAUTH_GITHUB_CLIENT_ID": "github-client-id",
        "OAUTH_GITHUB_CLIENT_SECRET": "github-client-secret",
        "OAUTH_GITHUB_AUTH_URL": f"{fake.github_base}/login/oauth/authorize",
        "OAUTH_GITHUB_TOKEN_URL": f"{fake.github_base}/login/oauth/access_token",
        "OAUTH_GITHUB_API_URL": f"{fake.github_base}/api",
    }


@pytest.fixture(params=["sqlite", "postgres"])
def oauth_auth(request, inkwell, oauth_provider):
    oauth_provider.reset()
    settings = {**FAST_HASHING, **provider_settings(oauth_provider)}
    if request.param == "postgres":
        stack = request.getfixturevalue("stack")
        settings["INKWELL_AUTH_DATABASE_URL"] = private_schema(
            request, stack["INKWELL_AUTH_DATABASE_URL"])
        settings["KAFKA_BROKERS"] = stack["KAFKA_BROKERS"]
    process = inkwell.serve("--services=auth", **settings)
    return AuthClient(process.port("auth")), oauth_provider


def start(browser: AuthClient, provider: str):
    """GET /auth/oauth/{provider}: a redirect to the provider and the binding cookie."""
    response = browser.request("GET", f"/auth/oauth/{provider}")
    assert response.status == 302, response
    cookie = set_cookies(response)["inkwell_oauth"]
    assert cookie["httponly"] and cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/api/auth/oauth" and int(cookie["max-age"]) <= 600
    return response.header("Location")


def visit_provider(location: str):
    """The browser at the provider: it consents at once and is sent back with a code."""
    parts = urllib.parse.urlsplit(location)
    response = http_request(parts.port, "GET", f"{parts.path}?{parts.query}")
    assert response.status == 302, response
    return response.header("Location")


def come_back(browser: AuthClient, callback_location: str):
    """The provider's redirect to our callback, reached through the gateway's /api prefix."""
    parts = urllib.parse.urlsplit(callback_location)
    assert parts.path.startswith("/api/auth/oauth/"), callback_location
    return browser.request("GET", f"{parts.path[len('/api'):]}?{parts.query}")


def sign_in(browser: AuthClient, provider: str):
    return come_back(browser, visit_provider(start(browser, provider)))


def session_user(browser: AuthClient) -> dict:
    """Finishes like the web app does after the redirect: refresh, then GET /users/me."""
    refreshed = browser.request("POST", "/auth/refresh")
    assert refreshed.status == 200, refreshed
    token = refreshed.json()["accessToken"]
    return browser.request("GET", "/users/me", token=token).json()


def test_google_sign_in_end_to_end(oauth_auth):
    auth, fake = oauth_auth
    email = unique_email("ada").lower()
    fake.set_user("google", sub="g-" + email, email=email, name="Ada Lovelace")
    browser = AuthClient(auth.port)
    location = start(browser, "google")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query["response_type"] == "code" and query["client_id"] == "google-client-id"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"] == f"{PUBLIC_URL}/api/auth/oauth/google/callback"
    assert query["state"] and query["nonce"] and "openid" in query["scope"]

    finished = come_back(browser, visit_provider(location))
    assert finished.status == 302, finished
    assert finished.header("Location") == f"{PUBLIC_URL}/"
    assert "token" not in finished.header("Location").lower()
    cookies = set_cookies(finished)
    assert cookies["inkwell_refresh"]["httponly"] and cookies["inkwell_oauth"]["max-age"] == "0"
    user = session_user(browser)
    assert user["email"] == email and user["name"] == "Ada Lovelace"
    assert user["hasPassword"] is False

    # The real client sent the PKCE verifier and the secret to the token endpoint.
    [token_call] = [r for r in fake.requests() if r.get("path", "").endswith("/google/token")]
    assert token_call["params"].get("code_verifier")

    # Signing in again finds the same account through the recorded external login.
    again = AuthClient(auth.port)
    assert sign_in(again, "google").status == 302
    assert session_user(again)["id"] == user["id"]


def test_github_sign_in_uses_the_verified_primary_email(oauth_auth):
    auth, fake = oauth_auth
    email = unique_email("octo").lower()
    fake.set_user("github", id=abs(hash(email)) % 10**9, login="octo", name=None,
                  emails=[{"email": "other-" + email, "primary": False, "verified": True},
                          {"email": email, "primary": True, "verified": True}])
    browser = AuthClient(auth.port)
    finished = sign_in(browser, "github")
    assert finished.status == 302 and finished.header("Location") == f"{PUBLIC_URL}/"
    user = session_user(browser)
    assert user["email"] == email
    assert user["name"] == "octo"  # GitHub users without a name go by their login


def test_unverified_github_email_is_refused(oauth_auth):
    auth, fake = oauth_auth
    email = unique_email("unverified").lower()
    fake.set_user("github", id=abs(hash(email)) % 10**9,
                  emails=[{"email": email, "primary": True, "verified": False}])
    browser = AuthClient(auth.port)
    finished = sign_in(browser, "github")
    path, query = location_path(finished)
    assert finished.status == 302 and path == "/login"
    assert query["error"] == "email_not_verified"
    assert "inkwell_refresh" not in browser.cookies
    # No account was created under that address.
    assert AuthClient(auth.port).register(email).status == 201


def test_oauth_links_to_the_existing_password_account(oauth_auth):
    auth, fake = oauth_auth
    email = unique_email("linked").lower()
    created = auth.register(email).json()["user"]
    fake.set_user("google", sub="g-" + email, email=email, email_verified=True, name="Other Name")
    browser = AuthClient(auth.port)
    assert sign_in(browser, "google").status == 302
    user = session_user(browser)
    assert user["id"] == created["id"] and user["name"] == created["name"]
    assert AuthClient(auth.port).login(email).status == 200  # the password still works


def test_state_must_match_be_fresh_and_come_from_this_browser(oauth_auth):
    auth, _ = oauth_auth
    browser = AuthClient(auth.port)
    callback = visit_provider(start(browser, "google"))
    parts = urllib.parse.urlsplit(callback)
    query = dict(urllib.parse.parse_qsl(parts.query))
    path = parts.path[len("/api"):]

    forged = browser.request("GET", f"{path}?code={query['code']}&state=forged-state-value")
    assert forged.status == 400 and forged.json()["error"]["code"] == "invalid_oauth_state"

    # Another browser (no binding cookie) presenting this state: refused, and the state is spent.
    intruder = AuthClient(auth.port)
    stolen = intruder.request("GET", f"{path}?{parts.query}")
    assert stolen.status == 400 and stolen.json()["error"]["code"] == "invalid_oauth_state"
    replay = browser.request("GET", f"{path}?{parts.query}")
    assert replay.status == 400, "a state works once"

    # A fresh sign-in succeeds, and replaying its callback afterwards is refused.
    callback = visit_provider(start(browser, "google"))
    assert come_back(browser, callback).status == 302
    replayed = come_back(browser, callback)
    assert replayed.status == 400 and replayed.json()["error"]["code"] == "invalid_oauth_state"
    missing = browser.request("GET", "/auth/oauth/google/callback?code=abc")
    assert missing.status == 400


def test_pkce_mismatch_fails_the_exchange(oauth_auth):
    auth, fake = oauth_auth
    email = unique_email("pkce").lower()
    fake.set_user("google", sub="g-" + email, email=email)
    browser = AuthClient(auth.port)
    location = start(browser, "google")
    # An attacker who swaps the challenge cannot redeem the code with our verifier.
    parts = urllib.parse.urlsplit(location)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["code_challenge"] = "A" * 43
    tampered = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    finished = come_back(browser, visit_provider(tampered))
    path, result = location_path(finished)
    assert finished.status == 302 and path == "/login"
    assert result["error"] == "oauth_exchange_failed"
    assert "inkwell_refresh" not in browser.cookies
    assert AuthClient(auth.port).register(email).status == 201  # nothing was created


def test_denied_consent_goes_back_to_the_login_page(oauth_auth):
    auth, fake = oauth_auth
    fake.deny("google")
    browser = AuthClient(auth.port)
    finished = sign_in(browser, "google")
    path, query = location_path(finished)
    assert path == "/login" and query["error"] == "access_denied"


def test_google_key_rotation_is_followed(oauth_auth):
    auth, fake = oauth_auth
    browser = AuthClient(auth.port)
    fake.set_user("google", sub="g-rot-" + unique_email(), email=unique_email("rot").lower())
    assert sign_in(browser, "google").header("Location") == f"{PUBLIC_URL}/"
    fake.rotate_key()  # new tokens carry a kid the service has not seen: it refetches the JWKS
    fake.set_user("google", sub="g-rot2-" + unique_email(), email=unique_email("rot2").lower())
    other = AuthClient(auth.port)
    assert sign_in(other, "google").header("Location") == f"{PUBLIC_URL}/"


def test_an_unconfigured_provider_is_404(inkwell):
    process = inkwell.serve("--services=auth", **FAST_HASHING)
    client = AuthClient(process.port("auth"))
    for path in ("/auth/oauth/google", "/auth/oauth/github/callback?state=x&code=y",
                 "/auth/oauth/facebook"):
        response = client.request("GET", path)
        assert response.status == 404 and response.json()["error"]["code"] == "not_found"
