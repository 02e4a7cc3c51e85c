"""One profile list, several places: the servers of profiles that run somewhere other than where
the hub's spawner starts them (`runs_on`) are handed to a spawner object of their own, a delegate.

The hub's spawner resolves and checks every spawn's profile itself (groups, quotas, the form, the
REST refusals); for a `runs_on: slurm` profile it then makes a `SlurmJobSpawner`, for a
`runs_on: kubernetes` profile on a local hub a `KubeProfileSpawner`, and passes start, stop, poll,
progress and state on to it. The delegate's state is kept inside the hub spawner's, so a hub
restart finds the server again. wrapspawner's ProfilesSpawner hands spawns to child spawners the
same way.
"""

from collections.abc import Callable

from jupyterhub.spawner import Spawner
from traitlets.config import Configurable

from .profile_spawner import ProfileSpawnerMixin
from .user_options import ResolvedProfile

# The spawner state key of a delegated server: {"runs_on": kind, "state": the delegate's state}.
DELEGATE_STATE_KEY = "sciencelab_delegate"


class DelegatingSpawnerMixin(Configurable):
    """Hands spawns of profiles that run elsewhere to delegates; mix in after
    `ProfileSpawnerMixin`, before the JupyterHub spawner class.

    A delegate is a JupyterHub `Spawner` with `start_delegated(resolved, hub_spawner)`, which
    starts the server of the profile the hub's spawner resolved and returns what `start` returns.
    Subclasses say which kinds they delegate, and how each delegate is made, in `delegate_makers`.
    """

    delegate: Spawner | None = None
    delegate_kind: str | None = None

    def delegate_makers(self) -> dict[str, Callable[[], Spawner]]:
        """`runs_on` kind -> a function making a new delegate for it."""
        return {}

    def delegate_arguments(self) -> dict:
        """What JupyterHub gives a spawner it makes (`User._new_spawner`), for a delegate: the
        same user, server record, hub, login and configuration as this spawner."""
        return {
            "user": self.user,
            "orm_spawner": self.orm_spawner,
            "hub": self.hub,
            "authenticator": self.authenticator,
            "config": self.config,
            "proxy_spec": self.proxy_spec,
            "oauth_client_id": self.oauth_client_id,
            "cookie_options": self.cookie_options,
            "cookie_host_prefix_enabled": self.cookie_host_prefix_enabled,
            "trusted_alt_names": self.trusted_alt_names,
            "user_options": self.user_options,
            # KubeSpawner still commits through it when a pod's address changes.
            "_deprecated_db_session": self._deprecated_db_session,
        }

    def make_delegate(self, kind: str) -> Spawner:
        delegate = self.delegate_makers()[kind]()
        delegate.log = self.log
        # The same Server object, which JupyterHub updates with the address `start` returns: a
        # copy would keep the address it had before (KubeSpawner's poll compares it with the pod's).
        if self.server is not None:
            delegate.server = self.server
        # The hub's spawner reports the profile's notices and judges its options, not the delegate.
        delegate.delegated = True
        return delegate

    async def start(self):
        resolved: ResolvedProfile | None = self.sciencelab_profile
        if resolved is None or resolved.runs_on not in self.delegate_makers():
            return await super().start()
        self.delegate_kind = resolved.runs_on
        self.delegate = self.make_delegate(resolved.runs_on)
        return await self.delegate.start_delegated(resolved, self)

    async def stop(self, now=False):
        if self.delegate is None:
            return await super().stop(now=now)
        await self.delegate.stop(now=now)

    async def poll(self):
        if self.delegate is None:
            return await super().poll()
        return await self.delegate.poll()

    async def progress(self):
        if self.delegate is None:
            async for event in super().progress():
                yield event
            return
        async for event in self.delegate.progress():
            yield event

    async def refresh_server_token(self, token: str):
        await super().refresh_server_token(token)
        if isinstance(self.delegate, ProfileSpawnerMixin):  # a pod, which reads it from its own Secret
            await self.delegate.refresh_server_token(token)

    def get_state(self):
        state = super().get_state()
        if self.delegate is not None:
            state[DELEGATE_STATE_KEY] = {"runs_on": self.delegate_kind, "state": self.delegate.get_state()}
        return state

    def load_state(self, state):
        super().load_state(state)
        saved = state.get(DELEGATE_STATE_KEY)
        if saved and saved["runs_on"] in self.delegate_makers():
            self.delegate_kind = saved["runs_on"]
            self.delegate = self.make_delegate(saved["runs_on"])
            self.delegate.load_state(saved["state"])

    def clear_state(self):
        super().clear_state()
        self.delegate = self.delegate_kind = None
