"""Local fakes of third-party services that speak their real protocols (for tests only).

oauth_provider: Google (OpenID Connect) and GitHub OAuth 2.0 login; see start_oauth_provider().
"""

from .oauth_provider import OAuthProvider, start_oauth_provider

__all__ = ["OAuthProvider", "start_oauth_provider"]
