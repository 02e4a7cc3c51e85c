"""An independent oracle for user_options: what the hub must answer, worked out from the raw YAML.

Written separately from `sciencelab_spawner.user_options` (no schema, no shared code) so that the
fuzz tests compare two implementations of the rules, not one with itself.
"""

import yaml

from .profile_examples import EXAMPLE_FILE

RAW = yaml.safe_load(EXAMPLE_FILE.read_text())  # the default: docs/examples/profiles.yaml
SINGLE_KEYS = {
    "image": ("image",),
    "size": ("size",),
    "gpu_model": ("gpu", "model"),
    "collaborative": ("collaborative",),
}
MULTI_KEYS = {"cvmfs": ("cvmfs",), "s3": ("s3",)}


def lookup(profile: dict, path: tuple[str, ...]):
    for part in path:
        if not isinstance(profile, dict) or part not in profile:
            return None
        profile = profile[part]
    return profile


def choices_of(spec) -> list[tuple[object, list[str]]]:
    """(value, allowed groups) of an option offered as a choice; [] when the admin fixed it."""
    if not isinstance(spec, dict) or "choices" not in spec:
        return []
    return [(c["value"], c.get("allowed_groups", [])) if isinstance(c, dict) else (c, []) for c in spec["choices"]]


def _allowed(groups: set[str], allowed_groups: list[str]) -> bool:
    return not allowed_groups or bool(groups & set(allowed_groups))


def _same(a, b) -> bool:
    # JSON true is not 1, and 1 is not "1".
    return type(a) is type(b) and a == b


def expected_status(options, groups, raw: dict = RAW) -> int:
    """200 when the hub must accept `options` from a member of `groups` under the profile file
    `raw`, else 400 or 403."""
    groups = set(groups)
    if not isinstance(options, dict):
        return 400
    visible = [p for p in raw["profiles"] if _allowed(groups, p.get("allowed_groups", []))]
    if "profile" in options:
        slug = options["profile"]
        profile = next((p for p in visible if isinstance(slug, str) and p["slug"] == slug), None)
        if profile is None:
            exists = any(isinstance(slug, str) and p["slug"] == slug for p in raw["profiles"])
            return 403 if exists else 400
    else:
        profile = next((p for p in visible if p.get("default")), visible[0])
    for key, value in options.items():
        if key == "profile":
            continue
        status = _option_status(profile, key, value, groups)
        if status != 200:
            return status
    return 200


def chosen_profile(options: dict, groups, raw: dict = RAW) -> dict:
    """The profile an accepted `options` starts."""
    visible = [p for p in raw["profiles"] if _allowed(set(groups), p.get("allowed_groups", []))]
    if "profile" in options:
        return next(p for p in visible if p["slug"] == options["profile"])
    return next((p for p in visible if p.get("default")), visible[0])


def _option_status(profile: dict, key: str, value, groups: set[str]) -> int:
    if key == "gpu_count":
        count = lookup(profile, ("gpu", "count"))
        if not isinstance(count, dict) or count.get("min", 1) == count["max"]:
            return 400
        whole = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
        return 200 if whole and count.get("min", 1) <= value <= count["max"] else 400
    if key in SINGLE_KEYS:
        choices = choices_of(lookup(profile, SINGLE_KEYS[key]))
        if len(choices) < 2:
            return 400
        match = next((g for v, g in choices if _same(v, value)), None)
        if match is None:
            return 400
        return 200 if _allowed(groups, match) else 403
    if key in MULTI_KEYS:
        choices = choices_of(lookup(profile, MULTI_KEYS[key]))
        if not choices or not isinstance(value, list):
            return 400
        if any(not any(_same(v, item) for v, _ in choices) for item in value):
            return 400
        if len(set(map(repr, value))) != len(value):
            return 400
        restricted = [item for item in value for v, g in choices if _same(v, item) and not _allowed(groups, g)]
        return 403 if restricted else 200
    return 400
