"""What a user may send, and how it becomes one frozen `ResolvedProfile`.

`user_options` are untrusted: they may be a raw REST API body. Each profile's options are declared
as one JSON Schema (`make_options_schema`) that drives validation here, the spawn form and the
profiles API. Everything is pure: config, options and the user's groups in, a value or an error out.
Error messages show what the user sent cut short (`shown`, `cut`): the hub logs them, and a
refused value may be a megabyte.
"""

import json
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from .profile_config import (
    Choice,
    CountOption,
    CvmfsRepository,
    GpuModel,
    Image,
    MultiOption,
    Offload,
    Profile,
    ProfileConfig,
    S3Bucket,
    SingleOption,
    Size,
)
from .session_terms import SessionTerms

# The keys of `user_options` besides `profile`, in the order the form shows them.
OPTION_TITLES = {
    "image": "Image",
    "size": "Size",
    "gpu_model": "GPU model",
    "gpu_count": "GPUs",
    "cvmfs": "CVMFS repositories",
    "s3": "S3 buckets",
    "collaborative": "Real-time collaboration",
    "lifetime_hours": "Session length (hours)",
    "partition": "SLURM partition",
    "account": "SLURM account",
    "qos": "SLURM quality of service",
}
OPTION_DESCRIPTIONS = {
    "image": "The software environment of the server.",
    "size": "CPU cores and memory.",
    "gpu_model": "Which GPU model (or MIG slice) to attach.",
    "gpu_count": "How many GPUs (or MIG slices) to attach.",
    "cvmfs": "Repositories mounted read-only under /cvmfs.",
    "s3": "Buckets attached to the server.",
    "collaborative": "Co-edit notebooks with others in real time.",
    "lifetime_hours": "How long the server may run before the hub stops it.",
    "partition": "The SLURM partition the job runs in.",
    "account": "The SLURM account the job is charged to.",
    "qos": "The SLURM quality of service of the job.",
}
# The options of a `runs_on: slurm` profile, which name SLURM's own partitions, accounts and QOS.
SLURM_OPTIONS = ("partition", "account", "qos")


@dataclass(frozen=True)
class SlurmJob:
    """A `runs_on: slurm` spawn's job settings: admin names and the user's checked choices only."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    modules: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    container: str | None = None


# How many characters of what a user sent a message shows. The server extension cuts its own
# messages the same way (`sciencelab/request_json.py`); the hub and server sides share no code.
SHOWN_LENGTH = 80
# The longest value whose check is memoized: the choices are short names, longer values are refused.
MEMOIZED_LENGTH = 1024

_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 3
# Strings and numbers whole: `cut` shortens the text with the full length, reprlib only in the middle.
_SHORT_REPR.maxstring = _SHORT_REPR.maxlong = _SHORT_REPR.maxother = 2**31


def cut(text: str) -> str:
    """`text`, or its first `SHOWN_LENGTH` characters with an ellipsis and its length when longer."""
    if len(text) <= SHOWN_LENGTH:
        return text
    return f"{text[:SHOWN_LENGTH]}… ({len(text)} characters)"


def shown(value: object) -> str:
    """A value a user sent, as a message shows it: its repr, three levels deep, `cut` short."""
    return cut(_SHORT_REPR.repr(value))


class UserOptionsError(ValueError):
    """A user asked for something the admin's profiles do not allow: an HTTP 400.

    The message names the field, the value and what is allowed; `field` (cut short: it may be a
    key the user made up), `value` and `allowed` let callers build other messages without parsing it.
    """

    status_code = 400

    def __init__(self, field: str, value: object, allowed: str, problem: str = "is not allowed"):
        self.field = cut(field)
        self.value = value
        self.allowed = allowed
        super().__init__(f"{self.field}: {shown(value)} {problem}; {allowed}")


class ForbiddenOptionError(UserOptionsError):
    """The value exists, but not for this user's groups or quota: an HTTP 403."""

    status_code = 403


@dataclass(frozen=True)
class ResolvedProfile:
    """One spawn's profile and options, resolved afresh from the admin's config.

    Spawners turn this into their resources; nothing in it is a user string except `options`,
    whose values were checked against the admin's choices.
    """

    slug: str
    display_name: str
    description: str = ""
    image: Image | None = None
    size: Size | None = None
    gpu_model: GpuModel | None = None
    gpu_count: int = 0
    cvmfs: tuple[CvmfsRepository, ...] = ()
    s3: tuple[S3Bucket, ...] = ()
    collaborative: bool = False
    session: SessionTerms = field(default_factory=SessionTerms)
    # "local", "kubernetes" or "slurm"; None: the hub's own spawner.
    runs_on: str | None = None
    slurm: SlurmJob | None = None
    dask_config: str | None = None
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    node_selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tolerations: tuple[Mapping, ...] = ()
    # The interLink virtual node and batch job of an offloaded profile; None: the cluster's own nodes.
    offload: Offload | None = None
    # The checked options as the user sent them: what the next spawn without options reuses.
    options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    # What the user should know, e.g. that a remembered choice is no longer offered.
    notices: tuple[str, ...] = ()


def may_use(groups: frozenset[str], allowed_groups: frozenset[str]) -> bool:
    """Whether a member of `groups` may use something restricted to `allowed_groups` (empty: all)."""
    return not allowed_groups or not groups.isdisjoint(allowed_groups)


def visible_profiles(config: ProfileConfig, groups: Iterable[str]) -> tuple[Profile, ...]:
    """The profiles a member of `groups` may use, in the admin's order."""
    groups = frozenset(groups)
    return tuple(p for p in config.profiles if may_use(groups, p.allowed_groups))


def default_profile(profiles: tuple[Profile, ...]) -> Profile | None:
    """The profile marked `default` among `profiles`, else the first; None when there is none."""
    return next((p for p in profiles if p.default), profiles[0] if profiles else None)


def profile_options(profile: Profile) -> dict[str, object]:
    """Every option `profile` declares, by user option key, whether fixed or offered."""
    options = {
        "image": profile.image,
        "size": profile.size,
        "gpu_model": profile.gpu_model,
        "gpu_count": profile.gpu_count,
        "cvmfs": profile.cvmfs,
        "s3": profile.s3,
        "collaborative": profile.collaborative.switch if profile.collaborative else None,
        # A fixed lifetime is no choice, and need not be whole hours: it is shown with the session terms.
        "lifetime_hours": profile.lifetime.hours if profile.lifetime and profile.lifetime.offered else None,
        **{name: getattr(profile.slurm, name) if profile.slurm else None for name in SLURM_OPTIONS},
    }
    return {key: option for key, option in options.items() if option is not None}


def offered_options(profile: Profile) -> dict[str, object]:
    """The options of `profile` that users choose (not fixed by the admin), by user option key."""
    return {key: option for key, option in profile_options(profile).items() if option.offered}


def fixed_options(profile: Profile) -> dict[str, object]:
    """The options of `profile` the admin fixed, by user option key: catalog names, a count, a flag."""
    return {
        key: list(option.default) if isinstance(option, MultiOption) else option.default
        for key, option in profile_options(profile).items()
        if not option.offered
    }


def choice_title(config: ProfileConfig, key: str, value: str | bool) -> str:
    """How the form names one choice of option `key`."""
    if key == "collaborative":
        return "On" if value else "Off"
    if key in SLURM_OPTIONS:
        return str(value)  # SLURM's own names
    catalog = {
        "image": config.images,
        "size": config.sizes,
        "gpu_model": config.gpu_models,
        "cvmfs": config.cvmfs_repositories,
        "s3": config.s3_buckets,
    }[key]
    return catalog[value].display_name


def make_options_schema(config: ProfileConfig, profile: Profile, groups: Iterable[str] | None) -> dict:
    """The JSON Schema of the options a member of `groups` may send with `profile`.

    `groups=None` gives every choice regardless of groups (used to tell 403 from 400).
    """
    groups = None if groups is None else frozenset(groups)

    def allowed(choices: tuple[Choice, ...]) -> list[Choice]:
        return [c for c in choices if groups is None or may_use(groups, c.allowed_groups)]

    properties = {}
    for key, option in offered_options(profile).items():
        schema = {"title": OPTION_TITLES[key], "description": OPTION_DESCRIPTIONS[key]}
        if isinstance(option, CountOption):
            schema.update(type="integer", minimum=option.minimum, maximum=option.maximum, default=option.default)
        elif isinstance(option, MultiOption):
            choices = allowed(option.choices)
            schema.update(
                type="array",
                uniqueItems=True,
                items={
                    "type": "string",
                    "oneOf": [{"const": c.value, "title": choice_title(config, key, c.value)} for c in choices],
                },
                default=[name for name in option.default if any(c.value == name for c in choices)],
            )
        else:
            choices = allowed(option.choices)
            schema.update(
                type="boolean" if key == "collaborative" else "string",
                oneOf=[{"const": c.value, "title": choice_title(config, key, c.value)} for c in choices],
            )
            default = _single_default(option, choices)
            if default is not None:
                schema["default"] = default
        properties[key] = schema
    return {
        "type": "object",
        "title": profile.display_name,
        "description": profile.description,
        "properties": properties,
        "additionalProperties": False,
    }


def make_user_options_schema(config: ProfileConfig, groups: Iterable[str]) -> dict:
    """The JSON Schema of `user_options` for a member of `groups`: a profile, then its options.

    Served whole by the profiles API; the spawn form and `resolve_user_options` use its parts: the
    profiles `groups` may use, and each one's `make_options_schema`.
    """
    profiles = visible_profiles(config, groups)
    default = default_profile(profiles)
    profile_schema = {
        "type": "string",
        "title": "Profile",
        "description": "The server profile to start.",
        "oneOf": [{"const": p.slug, "title": p.display_name} for p in profiles],
    }
    if default is not None:
        profile_schema["default"] = default.slug
    return {
        "type": "object",
        "properties": {"profile": profile_schema},
        "required": [],
        "allOf": [
            {
                "if": {"properties": {"profile": {"const": p.slug}}, "required": ["profile"]},
                "then": _with_profile_key(make_options_schema(config, p, groups)),
            }
            for p in profiles
        ],
    }


def resolve_user_options(
    config: ProfileConfig, user_options: object, groups: Iterable[str], *, remembered: bool = False
) -> ResolvedProfile:
    """Check `user_options` against what `groups` may use and resolve them with the defaults.

    With `remembered`, the options are the ones JupyterHub kept from an earlier spawn: whatever is
    no longer valid falls back to its default, with a notice, instead of failing the spawn.
    Raises `UserOptionsError` (400) or `ForbiddenOptionError` (403) otherwise.
    """
    groups = frozenset(groups)
    if not isinstance(user_options, Mapping):
        raise UserOptionsError("user_options", user_options, 'send a JSON object such as {"profile": "<slug>"}')
    profiles = visible_profiles(config, groups)
    if not profiles:
        raise ForbiddenOptionError(
            "profile",
            user_options.get("profile"),
            "no profile is available to your groups; ask your hub admin",
            problem="cannot be started",
        )
    options = dict(user_options)
    notices = []

    def refuse_or_forget(error: UserOptionsError, key: str):
        if not remembered:
            raise error
        notices.append(
            f"Your last choice of {error.field} ({shown(error.value)}) is no longer offered; using the default instead."
        )
        options.pop(key, None)

    profile = _resolve_profile(config, profiles, options, refuse_or_forget)
    schema = make_options_schema(config, profile, groups)
    for key in list(options):
        if key == "profile":
            continue
        if key not in schema["properties"]:
            offered = ", ".join(schema["properties"]) or "(none: everything is fixed by the admin)"
            refuse_or_forget(
                UserOptionsError(
                    key,
                    options[key],
                    f"options of profile {profile.slug!r}: {offered}",
                    problem="is not an option of this profile",
                ),
                key,
            )
            continue
        error = _option_error(config, profile, groups, key, options[key], schema["properties"][key])
        if error is not None:
            refuse_or_forget(error, key)

    return _resolve(config, profile, schema, options, tuple(notices))


def _resolve_profile(config, profiles, options, refuse_or_forget) -> Profile:
    default = default_profile(profiles)
    if "profile" not in options:
        return default
    slug = options["profile"]
    allowed = f"choose one of: {', '.join(p.slug for p in profiles)}"
    match = next((p for p in profiles if p.slug == slug), None)
    if match is not None:
        return match
    hidden = next((p for p in config.profiles if p.slug == slug), None)
    if hidden is not None:
        error = ForbiddenOptionError(
            "profile", slug, allowed, problem=f"is only for members of {_groups(hidden.allowed_groups)}"
        )
    else:
        error = UserOptionsError("profile", slug, allowed)
    refuse_or_forget(error, "profile")
    # Forgotten: the other remembered options belonged to the old profile.
    options.clear()
    return default


@lru_cache(maxsize=4096)
def _valid_json(schema: str, value: str) -> bool:
    """Whether JSON `value` is valid against JSON `schema`: a pure function, so it is memoized
    (every spawn checks the same few choices against the same few schemas)."""
    return Draft202012Validator(json.loads(schema)).is_valid(json.loads(value))


def _option_error(config, profile, groups, key, value, schema) -> UserOptionsError | None:
    """Why `value` is not valid for option `key` of `profile`, or None when it is."""
    allowed = _describe_allowed(schema)
    if any(isinstance(grandchild, list | dict) for child in _children(value) for grandchild in _children(child)):
        # No option nests deeper than a list of names: refused before any check that could
        # recurse as deep as the value nests (the REST API takes JSON nested hundreds deep).
        return UserOptionsError(key, value, allowed)
    try:
        value_json = json.dumps(value, sort_keys=True)
        if len(value_json) <= MEMOIZED_LENGTH and _valid_json(json.dumps(schema, sort_keys=True), value_json):
            return None
    except (TypeError, ValueError):  # not JSON: the full check below names the problem
        pass
    error = best_match(Draft202012Validator(schema).iter_errors(value))
    if error is None:
        return None
    if error.validator == "uniqueItems":
        return UserOptionsError(key, value, allowed, problem="lists an entry twice")
    unrestricted = make_options_schema(config, profile, None)["properties"][key]
    if Draft202012Validator(unrestricted).is_valid(value):
        # Every value exists: some are kept for other groups.
        values = value if isinstance(value, list) else [value]
        choice = next(
            c
            for c in offered_options(profile)[key].choices
            if c.value in values and not may_use(groups, c.allowed_groups)
        )
        return ForbiddenOptionError(
            key, choice.value, allowed, problem=f"is only for members of {_groups(choice.allowed_groups)}"
        )
    path = list(error.absolute_path)
    if path:
        return UserOptionsError(f"{key}[{path[0]}]", value[path[0]], allowed)
    return UserOptionsError(key, value, allowed)


def _children(value: object) -> Iterable:
    """The items of a JSON list, the values of a JSON object, nothing for any other value."""
    return value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()


def _describe_allowed(schema: dict) -> str:
    """What option `schema` accepts, in words: `choose one of: a, b`."""
    if schema["type"] == "integer":
        return f"allowed: a whole number from {schema['minimum']} to {schema['maximum']}"
    if schema["type"] == "boolean":
        return "allowed: true or false"
    if schema["type"] == "array":
        names = [c["const"] for c in schema["items"]["oneOf"]]
        return f"choose any of: {', '.join(names) or '(none)'}, each at most once"
    return f"choose one of: {', '.join(str(c['const']) for c in schema['oneOf']) or '(none)'}"


def _groups(groups: frozenset[str]) -> str:
    return ", ".join(sorted(groups))


def _single_default(option: SingleOption, choices: list[Choice]) -> str | bool | None:
    """The admin's default if this user may pick it, else the first choice the user may pick."""
    if any(c.value == option.default for c in choices):
        return option.default
    return choices[0].value if choices else None


def _with_profile_key(schema: dict) -> dict:
    return {**schema, "properties": {"profile": {"type": "string"}, **schema["properties"]}}


def _resolve(
    config: ProfileConfig, profile: Profile, schema: dict, options: dict, notices: tuple[str, ...]
) -> ResolvedProfile:
    """Combine the admin's fixed values, the user's checked choices and the defaults."""

    def pick(key: str, option):
        if option is None:
            return None
        if key in options:
            return options[key]
        if key in schema["properties"]:
            return schema["properties"][key].get("default")
        return option.default

    image = pick("image", profile.image)
    size = pick("size", profile.size)
    gpu_model = pick("gpu_model", profile.gpu_model)
    gpu_count = pick("gpu_count", profile.gpu_count) or 0
    cvmfs = pick("cvmfs", profile.cvmfs) or ()
    s3 = pick("s3", profile.s3) or ()
    collaborative = bool(pick("collaborative", profile.collaborative.switch if profile.collaborative else None))
    lifetime_hours = pick("lifetime_hours", profile.lifetime.hours if profile.lifetime else None)
    slurm = None
    if profile.slurm is not None:
        settings = profile.slurm
        slurm = SlurmJob(
            **{name: pick(name, getattr(settings, name)) for name in SLURM_OPTIONS},
            modules=settings.modules,
            setup=settings.setup,
            container=settings.container,
        )

    resolved = ResolvedProfile(
        slug=profile.slug,
        display_name=profile.display_name,
        description=profile.description,
        image=config.images[image] if image is not None else None,
        size=config.sizes[size] if size is not None else None,
        gpu_model=config.gpu_models[gpu_model] if gpu_model is not None and gpu_count else None,
        gpu_count=int(gpu_count) if gpu_model is not None else 0,
        # The admin's order, whatever order the user sent.
        cvmfs=tuple(
            config.cvmfs_repositories[c.value]
            for c in (profile.cvmfs.choices if profile.cvmfs else ())
            if c.value in cvmfs
        ),
        s3=tuple(config.s3_buckets[c.value] for c in (profile.s3.choices if profile.s3 else ()) if c.value in s3),
        collaborative=collaborative,
        runs_on=profile.runs_on,
        slurm=slurm,
        dask_config=profile.dask_config,
        environment=profile.environment,
        node_selector=profile.node_selector,
        tolerations=profile.tolerations,
        offload=profile.offload,
        options=MappingProxyType(options),
        notices=notices,
    )
    if collaborative:
        # The seed platform's collaborative mode: its own image, and no GPU unless the admin says so.
        collaboration = profile.collaborative
        if collaboration.image is not None:
            resolved = replace(resolved, image=config.images[collaboration.image])
        if not collaboration.use_gpu:
            resolved = replace(resolved, gpu_model=None, gpu_count=0)
    # An offloaded server's GPUs are the HPC cluster's: outside the hub's quota, but as scarce when idle.
    holds_gpus = resolved.gpu_count > 0 or (resolved.offload is not None and resolved.offload.gpus > 0)
    return replace(resolved, session=_session_terms(config, profile, lifetime_hours, holds_gpus))


def _session_terms(config: ProfileConfig, profile: Profile, lifetime_hours: int | None, holds_gpus: bool):
    """The session terms of a server of `profile` (`lifetime_hours`: the user's choice, if offered)."""
    lifetime = profile.lifetime
    seconds = None
    if lifetime is not None:
        seconds = int(lifetime_hours) * 3600 if lifetime.offered else lifetime.default
    idle_timeout = profile.idle_timeout
    if idle_timeout is None:
        idle_timeout = config.sessions.gpu_idle_timeout if holds_gpus else config.sessions.idle_timeout
    extend = profile.extend
    return SessionTerms(
        lifetime=seconds,
        idle_timeout=idle_timeout,
        extend_step=extend.step if extend else None,
        extend_cap=extend.cap if extend else None,
    )
