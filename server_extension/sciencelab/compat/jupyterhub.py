"""JupyterHub's cache of hub lookups in a single-user server: guests' answers expire sooner than the
owner's, and can be forgotten at once.

`HubAuth` keeps every answer of the hub about a token for `cache_max_age` (300 s), whether or not it
grants access, in one `_ExpiringDict` with one age for all. A guest refused a moment ago would wait
up to 300 s for a new share to work, and a revoked guest would keep using the server as long.
`GuestAwareCache` keeps the owner's answers as long as HubAuth would, and everybody else's (guests,
refusals, unknown tokens) for `guest_max_age`; `forget_guests` drops all of those when the hub says
a share changed (guest_access.py). HubAuth's `cache` trait takes an `_ExpiringDict` only, and it
offers no per-entry age, so the class must derive from the private one.
"""

import time

from jupyterhub.services.auth import _ExpiringDict

PRIVATE_NAMES = (
    "jupyterhub.services.auth:_ExpiringDict",
    "jupyterhub.services.auth:_ExpiringDict._check_age",
    "jupyterhub.services.auth:_ExpiringDict().values",
    "jupyterhub.services.auth:_ExpiringDict().timestamps",
)


class GuestAwareCache(_ExpiringDict):
    """HubAuth's cache, with answers about anyone but `owner` kept `guest_max_age` seconds."""

    # ref: https://github.com/jupyterhub/jupyterhub/blob/6.1.1/jupyterhub/services/auth.py#L109
    # (`_ExpiringDict` keeps `values` and `timestamps` as dicts of its own and checks an entry's age
    # in `_check_age` before every read)

    def __init__(self, owner: str, max_age: float, guest_max_age: float):
        super().__init__(max_age)
        self.owner = owner
        self.guest_max_age = guest_max_age

    def is_owners(self, answer: object) -> bool:
        """Whether `answer` (a hub user model, or None for a token the hub does not know) is the owner's."""
        return isinstance(answer, dict) and answer.get("name") == self.owner

    def _check_age(self, key):
        expired = key in self.values and time.monotonic() - self.timestamps[key] > self.guest_max_age
        if expired and not self.is_owners(self.values[key]):
            del self[key]
        super()._check_age(key)

    def forget_guests(self) -> int:
        """Drop every answer that is not the owner's; returns how many."""
        keys = [key for key, answer in self.values.items() if not self.is_owners(answer)]
        for key in keys:
            del self[key]
        return len(keys)


def canary():
    """Fails, naming the symbol, when the installed JupyterHub's cache keeps entries otherwise."""
    cache = GuestAwareCache("alice", max_age=300, guest_max_age=5)
    cache["owner"] = {"name": "alice"}
    cache["guest"] = {"name": "bob"}
    cache["refused"] = None
    assert set(cache.values) == {"owner", "guest", "refused"}, (
        "jupyterhub.services.auth._ExpiringDict().values no longer holds the entries"
    )
    cache.timestamps["guest"] -= 10
    cache.timestamps["owner"] -= 10
    assert "guest" not in cache and cache.get("owner") == {"name": "alice"}, (
        "jupyterhub.services.auth._ExpiringDict._check_age or .timestamps no longer decide an entry's age"
    )
    assert cache.forget_guests() == 1 and list(cache.values) == ["owner"]
