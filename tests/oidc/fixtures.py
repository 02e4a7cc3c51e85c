"""The `oidc_provider` fixture: a real OpenID Connect provider on 127.0.0.1 (`provider.OidcProvider`).

Registered for every test by `tests/conftest.py`; every test that uses it carries the `oidc` marker. Without
Node or the npm package (`make .stamps/oidc` installs it) the fixture skips with the reason, except under
CI=true, where it fails.
"""

import pytest

from ..prerequisites import require
from .provider import OidcProvider


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory) -> OidcProvider:
    """The session's `OidcProvider`, started once (about a second) with the users of `provider.TEST_USERS`
    (alice in group `gpu-users`, bob in none) and no client: a test registers its own with
    `add_client(client_id, client_secret, redirect_uris, access_token_ttl=None)`. `issuer`, `discovery()`,
    `set_users(users)`, `stop()` and `start()` (same issuer, tokens kept: "provider down"), `log_path`.
    A test that changes the users or stops the provider puts them back. Stopped at the end of the session.
    """
    require(OidcProvider.missing())
    provider = OidcProvider(tmp_path_factory.mktemp("oidc-provider")).start()
    try:
        yield provider
    finally:
        provider.stop()
        print(f"OIDC provider log: {provider.log_path}")
