"""Profiles: what a hub admin declares, what a user may pick, and the checks between the two.

Everything here is pure: plain values in, plain values out, so the tests assert exact results and
every spawner (local processes now, Kubernetes later) shares one piece of logic.
"""

import re
from dataclasses import dataclass
from html import escape

# A slug travels in URLs, form values and environment variables: keep it boring.
SLUG_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class ProfileConfigError(ValueError):
    """The admin's profile list is wrong; raised at hub start-up, naming the entry and the field."""


class UserOptionsError(ValueError):
    """A user asked for something the profile allowlist does not allow.

    `field`, `value` and `allowed` let callers build an HTTP 400 without parsing the message.
    """

    def __init__(self, field: str, value: object, allowed: list[str]):
        self.field = field
        self.value = value
        self.allowed = allowed
        choices = ", ".join(allowed) if allowed else "(none)"
        super().__init__(f"{field}: {value!r} is not allowed; choose one of: {choices}")


@dataclass(frozen=True)
class Profile:
    """One entry of the admin's allowlist."""

    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    cpu_limit: float | None = None
    mem_limit: str | None = None


# field -> (accepted Python types, how to describe them in an error)
PROFILE_FIELDS = {
    "slug": (str, "a string such as 'small'"),
    "display_name": (str, "a string"),
    "description": (str, "a string"),
    "default": (bool, "true or false"),
    "cpu_limit": ((int, float), "a number of CPU cores such as 2"),
    "mem_limit": (str, "a size such as '2G'"),
}
REQUIRED_PROFILE_FIELDS = ("slug", "display_name")
MEM_LIMIT_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)?[KMGT]?$")


def make_profiles(entries: list[dict]) -> tuple[Profile, ...]:
    """Check the admin's profile entries and turn them into `Profile`s.

    Raises `ProfileConfigError` naming the entry (by position and slug) and the field at fault.
    """
    if not entries:
        raise ProfileConfigError("profiles: at least one profile is needed, got an empty list")
    profiles = []
    for index, entry in enumerate(entries):
        where = f"profiles[{index}]"
        if not isinstance(entry, dict):
            raise ProfileConfigError(f"{where}: expected a dict, got {type(entry).__name__}")
        for key, value in entry.items():
            if key not in PROFILE_FIELDS:
                known = ", ".join(PROFILE_FIELDS)
                raise ProfileConfigError(f"{where}: unknown field {key!r}; known fields: {known}")
            kind, expected = PROFILE_FIELDS[key]
            # bool is an int: refuse `cpu_limit: true` explicitly.
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise ProfileConfigError(f"{where}.{key}: expected {expected}, got {value!r}")
        for key in REQUIRED_PROFILE_FIELDS:
            if key not in entry:
                raise ProfileConfigError(f"{where}: missing required field {key!r}")
        slug = entry["slug"]
        if not SLUG_PATTERN.match(slug):
            raise ProfileConfigError(
                f"{where}.slug: {slug!r} must be lowercase letters, digits and '-', 1-63 characters"
            )
        cpu_limit = entry.get("cpu_limit")
        if cpu_limit is not None and cpu_limit <= 0:
            raise ProfileConfigError(f"{where}.cpu_limit: must be > 0 cores, got {cpu_limit!r}")
        mem_limit = entry.get("mem_limit")
        if mem_limit is not None and not MEM_LIMIT_PATTERN.match(mem_limit):
            raise ProfileConfigError(
                f"{where}.mem_limit: {mem_limit!r} is not a size such as '512M' or '2G'"
            )
        profiles.append(Profile(**{**entry, "cpu_limit": _float_or_none(cpu_limit)}))

    slugs = [p.slug for p in profiles]
    duplicates = sorted({s for s in slugs if slugs.count(s) > 1})
    if duplicates:
        raise ProfileConfigError(f"profiles: duplicate slug(s): {', '.join(duplicates)}")
    defaults = [p.slug for p in profiles if p.default]
    if len(defaults) > 1:
        raise ProfileConfigError(
            f"profiles: at most one profile may be the default, got: {', '.join(defaults)}"
        )
    return tuple(profiles)


def default_profile(profiles: tuple[Profile, ...]) -> Profile:
    """The profile marked `default`, else the first one."""
    return next((p for p in profiles if p.default), profiles[0])


def make_user_options_schema(profiles: tuple[Profile, ...]) -> dict:
    """The JSON schema of what a user may send, from the form or the REST API.

    It is the one declaration behind validation (`resolve_profile`) and the spawn form.
    """
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "profile": {
                "type": "string",
                "title": "Profile",
                "description": "The server profile to start, one of the slugs the admin allows.",
                "enum": [p.slug for p in profiles],
                "default": default_profile(profiles).slug,
            }
        },
    }


def resolve_profile(profiles: tuple[Profile, ...], user_options: dict) -> Profile:
    """The profile `user_options` asks for, or the default when it names none.

    `user_options` is untrusted (it may be a raw REST API body): anything outside the schema
    raises `UserOptionsError` naming the field, the value and what is allowed.
    """
    schema = make_user_options_schema(profiles)
    allowed_fields = list(schema["properties"])
    for field in user_options:
        if field not in schema["properties"]:
            raise UserOptionsError("user_options", field, allowed_fields)
    profile_schema = schema["properties"]["profile"]
    slug = user_options.get("profile", profile_schema["default"])
    if not isinstance(slug, str) or slug not in profile_schema["enum"]:
        raise UserOptionsError("profile", slug, profile_schema["enum"])
    return next(p for p in profiles if p.slug == slug)


def options_from_form(formdata: dict[str, list[str]]) -> dict:
    """Turn the spawn form's fields (lists of strings) into `user_options`; checks come later."""
    return {key: values[0] for key, values in formdata.items() if values}


def make_options_form(profiles: tuple[Profile, ...]) -> str:
    """The spawn form's HTML: one radio button per profile, every admin string escaped."""
    checked = default_profile(profiles).slug
    items = []
    for profile in profiles:
        slug = escape(profile.slug, quote=True)
        attrs = ' checked="checked"' if profile.slug == checked else ""
        description = (
            f'<div class="sciencelab-profile-description">{escape(profile.description)}</div>'
            if profile.description
            else ""
        )
        items.append(
            f'<label class="sciencelab-profile" for="profile-{slug}">'
            f'<input type="radio" name="profile" id="profile-{slug}" value="{slug}"{attrs}> '
            f"<strong>{escape(profile.display_name)}</strong>{description}</label>"
        )
    return '<fieldset class="sciencelab-profiles"><legend>Profile</legend>' + "".join(items) + "</fieldset>"


def _float_or_none(value: int | float | None) -> float | None:
    return None if value is None else float(value)
