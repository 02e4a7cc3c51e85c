"""OpenID Connect login tests against a real provider on 127.0.0.1.

`provider/provider.mjs` is panva's oidc-provider (npm, pinned in `provider/package-lock.json`, installed by the
Makefile's `.stamps/oidc`) with a username and password form; `provider.OidcProvider` configures, starts and
stops it; the `oidc_provider` fixture (`fixtures.py`) wraps that for pytest.
"""
