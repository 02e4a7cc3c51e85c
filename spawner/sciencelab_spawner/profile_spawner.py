"""The profile behaviour every ScienceLab spawner shares, on top of any JupyterHub spawner class."""

import json
import logging
import traceback
from dataclasses import dataclass
from weakref import WeakKeyDictionary, WeakSet

from jupyterhub.spawner import SpawnException
from traitlets import Dict, List, Unicode, Union, default, validate
from traitlets.config import Configurable

from .gpu_quota import GpuHolding, check_gpu_quota
from .profile_config import ProfileConfig, ProfileConfigError, make_profile_config
from .profile_record import DASK_CONFIG_FILE_ENV, PROFILE_RECORD_ENV, NotApplied, make_profile_record
from .profile_source import profile_file
from .server_token import SERVER_TOKEN_ENV
from .session_terms import SESSION_STATE_KEY, make_session_record
from .spawn_form import make_options_form, options_from_form
from .user_options import ResolvedProfile, UserOptionsError, resolve_user_options

STATE_KEY = "sciencelab"
# A server of a profile without `collaborative` runs without jupyter-collaboration's server half: no
# `/api/collaboration/` route answers (its `disable_rtc` would keep them). The server extension
# turns the lab half off from the profile record (server_extension/sciencelab/collaboration.py).
COLLABORATION_OFF_ARGS = ("--ServerApp.jpserver_extensions=jupyter_server_ydoc=False",)
# In a running server's state (the admin page's Server card shows it): why its options are no
# longer allowed, after its user lost a group or the admin changed the profiles.
NO_LONGER_ALLOWED_KEY = "sciencelab_no_longer_allowed"


class RefusalTracebackFilter(logging.Filter):
    """Drops the traceback JupyterHub logs for a request it refuses with a 4xx.

    JupyterHub's form handler logs every spawn failure with its traceback; for a refused option
    (a `SpawnException` below 500) the log already has the one line that says why. Its REST API
    logs the traceback of a body that is not JSON (`get_json_body`) before answering 400 "Invalid
    JSON in body of request".
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if (isinstance(error, SpawnException) and error.status_code < 500) or _reading_json_body(error):
            record.exc_info = record.exc_text = None
        return True

    @classmethod
    def install(cls, log: logging.Logger):
        """Add the filter to `log` (JupyterHub's own logger), once."""
        if not any(isinstance(f, cls) for f in log.filters):
            log.addFilter(cls())


def _reading_json_body(error: BaseException | None) -> bool:
    """Whether `error` was raised while a JupyterHub API handler read a request's JSON body."""
    frames = traceback.walk_tb(error.__traceback__) if error is not None else ()
    return any(frame.f_code.co_name == "get_json_body" for frame, _ in frames)


class SpawnRefusal(SpawnException):
    """A spawn refused on purpose, shown to the user as its message alone.

    JupyterHub's form and spawn page show `str(exception)` unless the exception has a
    `jupyterhub_message`, and a `SpawnException`'s str is "409 SpawnException(reason=...): ...".
    """

    @property
    def jupyterhub_message(self) -> str:
        return self.message


def spawn_refusal(error: UserOptionsError) -> SpawnRefusal:
    """The `SpawnRefusal` JupyterHub answers a refused option with: one log line, no traceback."""
    return SpawnRefusal(str(error), reason=error.field, status_code=error.status_code)


@dataclass(frozen=True)
class GpuClaim:
    """The GPUs a running or starting server holds: a count, and the devices where we pick them."""

    count: int
    devices: tuple[str, ...] = ()


# The spawners that hold GPUs, per hub: JupyterHub gives every spawner of a hub the same `hub`
# object, and keeps the spawner of every running server (restored with `load_state` at start-up).
_claiming_spawners: WeakKeyDictionary[object, WeakSet] = WeakKeyDictionary()


class ProfileSpawnerMixin(Configurable):
    """Offers the admin's profiles in the spawn form and enforces them on every spawn.

    Mix in before a `jupyterhub.spawner.Spawner` subclass. Each spawn resolves `user_options`
    afresh against the current profiles, the user's groups and the GPU quotas, then applies the
    result. Subclasses pick GPUs in `claim_gpus`, report availability in `gpu_status` and apply the
    profile to their own resources in `apply_profile`.

    Precedence, lowest first: the admin's `Spawner` settings, JupyterHub's `group_overrides`, then
    what the chosen profile declares (a profile without a size keeps the first two's limits).
    """

    # The profile settings this spawner does not apply, and why: the form and the server's panel
    # say so rather than claim them. None: every setting applies.
    not_applied: NotApplied | None = None
    # Where this spawner runs servers (the default of a profile's `runs_on`), and every `runs_on` it
    # can start.
    spawner_kind: str = ""
    runs_on_kinds: frozenset[str] = frozenset()

    profiles = Union(
        [List(Dict()), Dict()],
        config=True,
        help="""
        The server profiles users may choose from, when `profiles_file` is not set: the list of
        profiles, or a whole profile document (catalogs `images`, `sizes`, `gpu_models`,
        `cvmfs_repositories`, `s3_buckets`, `quotas` and `profiles`) as in a profile file.
        docs/profiles-reference.md describes every field.

        Default: one profile, `default`, with the spawner's own settings. Example::

            c.LocalProfileSpawner.profiles = [
                {"slug": "small", "display_name": "Small: 1 CPU, 2 GB", "size": {"cpu_limit": 1, "mem_limit": "2G"}},
                {"slug": "large", "display_name": "Large: 4 CPUs, 8 GB", "size": {"cpu_limit": 4, "mem_limit": "8G"}},
            ]
        """,
    )

    profiles_file = Unicode(
        "",
        config=True,
        help="""
        A YAML profile file (docs/profiles-reference.md); when set, `profiles` is ignored. It is
        re-read whenever it changes, without restarting the hub; an edit that breaks it keeps the
        last good profiles and logs why.

        Default: "" (use `profiles`). Example: "/etc/sciencelab/profiles.yaml".
        """,
    )

    @default("profiles")
    def _default_profiles(self):
        return [{"slug": "default", "display_name": "Default", "default": True}]

    @validate("profiles")
    def _validate_profiles(self, proposal):
        # Fails loudly, naming the profile and field, as soon as the spawner is configured.
        make_profile_config(proposal.value, f"{type(self).__name__}.profiles")
        return proposal.value

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        RefusalTracebackFilter.install(self.log)
        # The value each trait the profile of this spawn set had before; clear_state puts it back.
        self._before_profile: dict[str, object] = {}
        orm_spawner = getattr(self, "orm_spawner", None)
        # What the last accepted spawn sent: JupyterHub reuses it when a spawn sends no options.
        self._accepted_options = dict(orm_spawner.user_options or {}) if orm_spawner is not None else {}
        self._profiles_setting: tuple[object, ProfileConfig] | None = None
        self.sciencelab_profile: ResolvedProfile | None = None
        self.sciencelab_no_longer_allowed: str | None = None
        # This server's session terms (session_terms.make_session_record), kept in its state.
        self.sciencelab_session: dict | None = None
        # The user's token this server gets as a file (SciencelabOIDCAuthenticator.server_token), or None.
        self.server_token: str | None = None
        # The user's auth state during a spawn (`run_auth_state_hook`), or None.
        self.spawn_auth_state: dict | None = None
        # Whether a hub spawner that resolves, reports and judges the profile made this one its
        # delegate (delegates.py).
        self.delegated = False
        self._gpu_claim: GpuClaim | None = None

    @property
    def server_log_name(self) -> str:
        """The server in log lines: "alice", or "alice:gpu" for her server named gpu."""
        return f"{self.user.name}:{self.name}" if self.name else self.user.name

    @property
    def sciencelab_gpu_claim(self) -> GpuClaim | None:
        """The GPUs this server holds, None when it holds none."""
        return self._gpu_claim

    @sciencelab_gpu_claim.setter
    def sciencelab_gpu_claim(self, claim: GpuClaim | None):
        self._gpu_claim = claim
        if self.hub is None:
            return  # a spawner without a hub (tests) counts only its own user's servers
        claiming = _claiming_spawners.setdefault(self.hub, WeakSet())
        if claim is None:
            claiming.discard(self)
        else:
            claiming.add(self)

    @property
    def profile_config(self) -> ProfileConfig:
        """The profiles as they are now (a changed `profiles_file` is re-read)."""
        if self.profiles_file:
            return profile_file(self.profiles_file, self.log).current()
        if self._profiles_setting is None or self._profiles_setting[0] is not self.profiles:
            self._profiles_setting = (
                self.profiles,
                make_profile_config(self.profiles, f"{type(self).__name__}.profiles"),
            )
        return self._profiles_setting[1]

    @property
    def user_groups(self) -> frozenset[str]:
        return frozenset(group.name for group in self.user.groups)

    # --- the form ---

    @default("options_form")
    def _default_options_form(self):
        return type(self).render_options_form

    def render_options_form(self) -> str:
        gpu_free, gpu_problem = self.gpu_status(self.profile_config)
        return make_options_form(
            self.profile_config,
            self.user_groups,
            self._accepted_options,
            gpu_free,
            gpu_problem,
            self.not_applied,
            self.spawner_kind,
        )

    @default("options_from_form")
    def _default_options_from_form(self):
        def read_form(formdata, spawner):
            return spawner.read_spawn_fields(formdata)

        return read_form

    def options_from_query(self, query_data):
        # JupyterHub calls options_from_form without the spawner here (`/hub/spawn?profile=cpu`).
        return self.read_spawn_fields(query_data)

    def read_spawn_fields(self, fields: dict[str, list]) -> dict:
        """`user_options` from the spawn form's fields or a spawn URL's query; a field that is
        neither an option nor the form's is refused with a 400, as a REST spawn's would be."""
        try:
            return options_from_form(fields, self.profile_config)
        except UserOptionsError as error:
            raise spawn_refusal(error) from None

    @default("apply_user_options")
    def _default_apply_user_options(self):
        # user_options are checked and applied in run_pre_spawn_hook; this no-op only tells
        # JupyterHub they are handled, so it does not warn about "unhandled user_options".
        return lambda spawner, user_options: None

    # --- the spawn ---

    def run_pre_spawn_hook(self):
        # Here rather than in apply_user_options: JupyterHub logs a full traceback for anything
        # raised there, but a SpawnException raised here is one log line and an HTTP 4xx.
        try:
            config = self.profile_config
        except ProfileConfigError as error:
            raise SpawnRefusal(
                f"The hub's server profiles are broken; tell your hub admin: {error}",
                reason="profiles",
                status_code=503,
            ) from None
        # JupyterHub passes the options it kept when a spawn sends none (the admin page's Start).
        remembered = bool(self.user_options) and self.user_options == self._accepted_options
        try:
            resolved = resolve_user_options(config, self.user_options, self.user_groups, remembered=remembered)
            check_gpu_quota(
                config.quotas, self.user.name, self.user_groups, self.name, resolved.gpu_count, self.gpu_holdings()
            )
            devices = self.claim_gpus(resolved)
        except UserOptionsError as error:
            self._forget_refused_options()
            raise spawn_refusal(error) from None
        if resolved.runs_on is not None and resolved.runs_on not in self.runs_on_kinds:
            raise SpawnRefusal(
                f"Profile {resolved.slug!r} runs on {resolved.runs_on}, which this hub's {self.spawner_kind} "
                f"spawner cannot start (it starts: {', '.join(sorted(self.runs_on_kinds))}); tell your hub admin",
                reason="runs_on",
                status_code=503,
            )
        self.sciencelab_gpu_claim = GpuClaim(resolved.gpu_count, devices)
        self.sciencelab_profile = resolved
        self.sciencelab_session = make_session_record(resolved.session)
        for notice in resolved.notices:
            self.log.info("%s: %s", self.server_log_name, notice)
        self._remember_options(dict(resolved.options))
        self.log.info("Starting %s with profile %s", self.server_log_name, resolved.slug)
        self.apply_profile(resolved, devices)
        return super().run_pre_spawn_hook()

    def claim_gpus(self, resolved: ResolvedProfile) -> tuple[str, ...]:
        """Pick the devices of `resolved`'s GPUs, or raise `UserOptionsError` when none are free.

        Called synchronously between the quota check and the claim, so two spawns racing for the
        last GPU cannot both get it. Default: no devices (the scheduler picks them).
        """
        return ()

    def gpu_status(self, config: ProfileConfig) -> tuple[dict[str, tuple[int, int]], str | None]:
        """(free, total) per GPU model name, and why there are no GPUs at all (None: unknown)."""
        return {}, None

    def apply_profile(self, resolved: ResolvedProfile, devices: tuple[str, ...]):
        """Set this spawner's resources from `resolved`; subclasses extend it for their own, each
        trait through `set_for_profile`."""
        size = resolved.size
        if size is not None:
            for name in ("cpu_guarantee", "cpu_limit", "mem_guarantee", "mem_limit"):
                if getattr(size, name) is not None:
                    self.set_for_profile(name, getattr(size, name))
        if not resolved.collaborative:
            self.set_for_profile("args", [*self.args, *COLLABORATION_OFF_ARGS])
        handover = {PROFILE_RECORD_ENV: json.dumps(make_profile_record(resolved, devices, self.not_applied))}
        if resolved.dask_config:
            handover[DASK_CONFIG_FILE_ENV] = resolved.dask_config
        self.set_profile_environment({**resolved.environment, **handover})

    def set_profile_environment(self, environment: dict[str, str]):
        """Give the server `environment`, word for word, over the admin's `environment`.

        Subclasses whose base class rewrites `environment` (KubeSpawner formats it) override this.
        """
        self.set_for_profile("environment", {**self.environment, **environment})

    def set_for_profile(self, name: str, value):
        """Set trait `name` for this spawn's profile; `clear_state` puts back the value it had before.

        Only what a profile changes is put back, so what an admin set on the spawner after it was
        made (a subclass, `auth_state_hook`, `group_overrides`, `pre_spawn_hook`) stays.
        """
        current = getattr(self, name)
        if value == current:
            return  # setting a trait validates it, which is not free
        self._before_profile.setdefault(name, current)
        setattr(self, name, value)

    async def progress(self):
        if self.sciencelab_profile is not None and not self.delegated:
            for notice in self.sciencelab_profile.notices:
                yield {"message": notice}
        async for event in super().progress():
            yield event

    # --- GPUs held across the hub ---

    def gpu_holdings(self) -> list[GpuHolding]:
        """The GPUs every other running or starting server of this hub holds."""
        return [
            GpuHolding(
                spawner.user.name,
                spawner.name,
                frozenset(g.name for g in spawner.user.groups),
                spawner.sciencelab_gpu_claim.count,
            )
            for spawner in self._other_claiming_spawners()
        ]

    def claimed_gpu_devices(self) -> set[str]:
        """The devices every other running or starting server of this hub holds."""
        return {
            device for spawner in self._other_claiming_spawners() for device in spawner.sciencelab_gpu_claim.devices
        }

    def _other_claiming_spawners(self):
        claiming = _claiming_spawners.get(self.hub, ()) if self.hub is not None else self.user.spawners.values()
        for spawner in list(claiming):
            if spawner is not self and spawner.sciencelab_gpu_claim:
                yield spawner

    # --- the user's identity token, as a file the hub keeps fresh (server_token.py) ---

    async def run_auth_state_hook(self, auth_state):
        await super().run_auth_state_hook(auth_state)
        # Kept for this spawn only (clear_state drops it): S3 credentials may come from it.
        self.spawn_auth_state = auth_state
        kind = getattr(self.authenticator, "server_token", "")  # "" unless the login offers one
        self.server_token = (auth_state or {}).get(kind) if kind else None

    def get_env(self):
        env = super().get_env()
        if self.server_token:
            env[SERVER_TOKEN_ENV] = self.server_token_path
        return env

    @property
    def server_token_path(self) -> str:
        """Where the server reads its user's token (SERVER_TOKEN_ENV)."""
        raise NotImplementedError

    async def write_server_token(self):
        """Put `server_token` where the server reads it."""
        raise NotImplementedError

    async def refresh_server_token(self, token: str):
        """The hub renewed the user's token: the running server reads the new one from now on."""
        self.server_token = token
        await self.write_server_token()

    # --- a running server whose options its user may no longer choose: flagged, never stopped ---

    def options_no_longer_allowed(self) -> str | None:
        """Why the options this server runs with would be refused now (its user left a group, the
        admin changed the profiles), or None while they are still allowed."""
        if not self._accepted_options or self.delegated:
            return None
        try:
            resolve_user_options(self.profile_config, self._accepted_options, self.user_groups)
        except ProfileConfigError:
            return None  # the spawn path reports broken profiles; a running server is not judged by them
        except UserOptionsError as error:
            return str(error)
        return None

    async def poll(self):
        status = await super().poll()
        if status is None:
            reason = self.options_no_longer_allowed()
            if reason and reason != self.sciencelab_no_longer_allowed:
                self.log.warning(
                    "%s keeps running, but its options are no longer allowed: %s", self.server_log_name, reason
                )
            self.sciencelab_no_longer_allowed = reason
        return status

    # --- state: claims survive a hub restart; one spawn's profile never leaks into the next ---

    def get_state(self):
        state = super().get_state()
        if self.sciencelab_gpu_claim is not None:
            claim = self.sciencelab_gpu_claim
            state[STATE_KEY] = {"gpu_count": claim.count, "gpu_devices": list(claim.devices)}
        if self.sciencelab_no_longer_allowed:
            state[NO_LONGER_ALLOWED_KEY] = self.sciencelab_no_longer_allowed
        if self.sciencelab_session is not None:
            # What the hub service reads to stop the server at its deadline or when idle.
            state[SESSION_STATE_KEY] = self.sciencelab_session
        return state

    def load_state(self, state):
        super().load_state(state)
        saved = state.get(STATE_KEY)
        if saved:
            self.sciencelab_gpu_claim = GpuClaim(saved["gpu_count"], tuple(saved["gpu_devices"]))
        self.sciencelab_session = state.get(SESSION_STATE_KEY)

    def clear_state(self):
        # JupyterHub calls this after a server stops and before each spawn, before group_overrides.
        super().clear_state()
        self.sciencelab_gpu_claim = None
        self.sciencelab_profile = None
        self.sciencelab_no_longer_allowed = None
        self.sciencelab_session = None
        self.server_token = None
        self.spawn_auth_state = None
        before, self._before_profile = self._before_profile, {}
        for name, value in before.items():
            setattr(self, name, value)

    def _remember_options(self, options: dict):
        self._accepted_options = options
        if getattr(self, "orm_spawner", None) is not None:
            self.orm_spawner.user_options = options

    def _forget_refused_options(self):
        # JupyterHub saved the refused options as "last options" before asking us: put back the
        # last accepted ones, or every later spawn without options would fail the same way.
        # JupyterHub's own clean-up of the failed spawn (`User.stop`) commits it to the database.
        if getattr(self, "orm_spawner", None) is not None:
            self.orm_spawner.user_options = dict(self._accepted_options)
