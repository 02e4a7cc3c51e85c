"""The profile behaviour every ScienceLab spawner shares, on top of any JupyterHub spawner class."""

from jupyterhub.spawner import SpawnException
from traitlets import Dict, List, default, validate
from traitlets.config import Configurable

from sciencelab.info import PROFILE_NAME_ENV, PROFILE_SLUG_ENV

from .profiles import (
    Profile,
    UserOptionsError,
    make_options_form,
    make_profiles,
    options_from_form,
    resolve_profile,
)


class ProfileSpawnerMixin(Configurable):
    """Offers the admin's profiles in the spawn form and enforces them on every spawn.

    Mix in before a `jupyterhub.spawner.Spawner` subclass. Subclasses apply the chosen profile to
    their own resources in `apply_profile`.
    """

    profiles = List(
        Dict(),
        config=True,
        help="""
        The server profiles users may choose from, the allowlist every spawn is checked against.

        Each entry is a dict with `slug` (lowercase letters, digits, '-'; what the REST API sends as
        `{"profile": "<slug>"}`) and `display_name`, and optionally `description`, `default` (true
        on at most one; else the first is the default), `cpu_limit` (CPU cores, a number) and
        `mem_limit` (bytes with an optional K/M/G/T suffix, such as "2G").

        Default: one profile, `default`. Example::

            c.LocalProfileSpawner.profiles = [
                {"slug": "small", "display_name": "Small: 1 CPU, 2 GB", "cpu_limit": 1, "mem_limit": "2G"},
                {"slug": "large", "display_name": "Large: 4 CPUs, 8 GB", "cpu_limit": 4, "mem_limit": "8G"},
            ]
        """,
    )

    @default("profiles")
    def _default_profiles(self):
        return [{"slug": "default", "display_name": "Default", "default": True}]

    @validate("profiles")
    def _validate_profiles(self, proposal):
        # Fails loudly, naming the entry and field, as soon as the hub loads the configuration.
        make_profiles(proposal.value)
        return proposal.value

    @property
    def allowed_profiles(self) -> tuple[Profile, ...]:
        return make_profiles(self.profiles)

    @default("options_form")
    def _default_options_form(self):
        return make_options_form(self.allowed_profiles)

    @default("options_from_form")
    def _default_options_from_form(self):
        return options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        # user_options are checked and applied in run_pre_spawn_hook; this no-op only tells
        # JupyterHub they are handled, so it does not warn about "unhandled user_options".
        return lambda spawner, user_options: None

    def run_pre_spawn_hook(self):
        # Here rather than in apply_user_options: JupyterHub logs a full traceback for anything
        # raised there, but a SpawnException raised here is one log line and an HTTP 400.
        try:
            profile = resolve_profile(self.allowed_profiles, self.user_options)
        except UserOptionsError as error:
            raise SpawnException(str(error), reason=error.field) from None
        self.log.info("Starting %s with profile %s", self._log_name, profile.slug)
        self.apply_profile(profile)
        return super().run_pre_spawn_hook()

    def apply_profile(self, profile: Profile):
        """Set this spawner's resources from `profile`; subclasses extend it for their own."""
        self.cpu_limit = profile.cpu_limit
        self.mem_limit = profile.mem_limit
        self.environment = {
            **self.environment,
            PROFILE_SLUG_ENV: profile.slug,
            PROFILE_NAME_ENV: profile.display_name,
        }
