"""The spawn form: rendered from the user options schema, read back into `user_options`. Pure.

One card per profile the user may use (Bootstrap 5 classes, as JupyterHub's own pages), with its
fixed resources and a field per option the user chooses. The options of every profile are in the
page, named `<slug>.<option>`, so the form works without JavaScript; a few lines of script only fold
away the options of the profiles not selected. Every admin string is escaped.

A profile whose GPUs this hub cannot place is shown disabled with the reason; settings the spawner
does not apply are marked ("only on Kubernetes"), with its reason above the profiles.
"""

from collections.abc import Callable, Mapping
from html import escape

from .gpu_placement import gpu_placement_problem
from .profile_config import Profile, ProfileConfig
from .profile_record import NotApplied
from .session_terms import describe_duration
from .user_options import UserOptionsError, fixed_options, make_options_schema, offered_options, visible_profiles
from .user_options import default_profile as pick_default_profile

FORM_SCRIPT = """<script>
(function () {
  // Fold away the options of the profiles that are not selected.
  var form = document.currentScript.closest("form") || document;
  function update() {
    form.querySelectorAll(".sciencelab-profile").forEach(function (card) {
      var radio = card.querySelector("input[name=profile]");
      card.querySelectorAll(".sciencelab-options").forEach(function (options) {
        options.hidden = !radio.checked;
      });
      card.classList.toggle("border-primary", radio.checked);
    });
  }
  form.querySelectorAll("input[name=profile]").forEach(function (radio) {
    radio.addEventListener("change", update);
  });
  update();
})();
</script>"""

FORM_STYLE = """<style>
.sciencelab-profile .sciencelab-resources { margin: 0.25rem 0 0.5rem 1.75rem; padding: 0; list-style: none; }
.sciencelab-profile .sciencelab-options { margin-left: 1.75rem; }
.sciencelab-profile .sciencelab-gpu-free, .sciencelab-profile .sciencelab-unavailable { margin-left: 1.75rem; }
</style>"""


def make_options_form(
    config: ProfileConfig,
    groups: frozenset[str],
    remembered: Mapping[str, object],
    gpu_free: Mapping[str, tuple[int, int]],
    gpu_problem: str | None = None,
    not_applied: NotApplied | None = None,
    hub_kind: str | None = None,
) -> str:
    """The form's HTML for a member of `groups`.

    `remembered` (the options of the last accepted spawn) pre-selects the user's last choices where
    they are still offered; `gpu_free` maps GPU model names to (free, total), and `gpu_problem`
    says why there are no GPUs at all, in the words of where the GPUs come from (NVML or the cluster).
    `not_applied` are the settings the spawner does not apply to the servers it starts itself
    (a `runs_on: kubernetes` profile's pods get them all); `hub_kind` is where it starts them.
    """
    profiles = visible_profiles(config, groups)
    if not profiles:
        return (
            '<div class="alert alert-warning sciencelab-no-profiles">No server profile is available to '
            "your groups. Ask your hub admin for access.</div>"
        )
    unavailable = {
        profile.slug: problem
        for profile in profiles
        if (problem := gpu_placement_problem(config, profile, gpu_free, gpu_problem, hub_kind)) is not None
    }
    available = tuple(profile for profile in profiles if profile.slug not in unavailable)
    selected = next((p for p in available if p.slug == remembered.get("profile")), None)
    if selected is None:
        selected = pick_default_profile(available)
        remembered = {}
    marked, unmarked = _NotAppliedMarker(not_applied), _NotAppliedMarker(None)
    cards = [
        _profile_card(
            config,
            profile,
            groups,
            remembered if profile is selected else {},
            profile is selected,
            gpu_free,
            unavailable.get(profile.slug),
            unmarked if profile.runs_on == "kubernetes" else marked,
        )
        for profile in profiles
    ]
    notice = (
        f'<div class="alert alert-info small sciencelab-not-applied">{escape(not_applied.reason)}</div>'
        if not_applied and any(profile.runs_on != "kubernetes" for profile in profiles)
        else ""
    )
    return (
        f'{FORM_STYLE}{notice}<fieldset class="sciencelab-profiles"><legend>Profile</legend>{"".join(cards)}'
        f"</fieldset>{FORM_SCRIPT}"
    )


class _NotAppliedMarker:
    """Marks a label of a setting the spawner does not apply ("Image only on Kubernetes")."""

    def __init__(self, not_applied: NotApplied | None):
        self.settings = frozenset(not_applied.settings) if not_applied else frozenset()
        self.html = (
            f' <span class="badge text-bg-secondary fw-normal sciencelab-not-applied-marker">'
            f"{escape(not_applied.marker)}</span>"
            if not_applied
            else ""
        )

    def __call__(self, key: str) -> str:
        return self.html if key in self.settings else ""


def options_from_form(formdata: Mapping[str, list], config: ProfileConfig) -> dict:
    """`user_options` from the form's fields (lists of strings), or from a spawn URL's query.

    The fields of the selected profile become its options, as the user sent them: a value that
    is not one of the form's (a count that is no number, two values for one choice) is passed on,
    for the checks to refuse by name as they refuse a REST spawn. The fields of the other
    profiles in the form are left out. Any other field, or a field without a profile, raises
    `UserOptionsError`: nothing a user sends is dropped without a word. Checkbox lists that
    arrive empty mean "none" (an unticked box is not sent at all), an absent switch means off.
    """
    values = formdata.get("profile") or []
    if not values:
        _refuse_fields(formdata, lambda name: False, problem="is sent without a profile")
        return {}
    slug = values[0] if len(values) == 1 else list(values)
    options: dict[str, object] = {"profile": slug}
    profile = next((p for p in config.profiles if p.slug == slug), None)
    kinds = {key: _field_kind(key) for key in offered_options(profile)} if profile else {}
    prefix = f"{slug}." if isinstance(slug, str) else None
    form_fields = {f"{p.slug}.{key}" for p in config.profiles for key in offered_options(p)}
    _refuse_fields(
        formdata,
        lambda name: name in form_fields or (prefix is not None and name.startswith(prefix)),
        problem="is not a field of the spawn form",
    )
    for name, field_values in formdata.items():
        if prefix is not None and name.startswith(prefix) and field_values:
            key = name[len(prefix) :]
            options[key] = _read_field(kinds.get(key, "single"), field_values)
    for key, kind in kinds.items():
        if key not in options and kind in ("multi", "switch"):
            options[key] = [] if kind == "multi" else False
    return options


# Fields of a spawn request that are tornado's and JupyterHub's, not options: the XSRF token
# (a form may send it in the body) and an API token (`?token=` in a spawn URL).
REQUEST_FIELDS = frozenset({"_xsrf", "token"})


def _refuse_fields(formdata: Mapping[str, list], accepted: Callable[[str], bool], problem: str):
    """Raise `UserOptionsError` for the first field besides `profile` that `accepted(name)` refuses.

    The selected profile's fields are accepted whatever their option, so that the checks name an
    unknown option as they do for a REST spawn.
    """
    for name, field_values in formdata.items():
        if name != "profile" and name not in REQUEST_FIELDS and not accepted(name):
            raise UserOptionsError(name, field_values, "the form sends profile and <profile>.<option> fields", problem)


def _field_kind(key: str) -> str:
    return {
        "cvmfs": "multi",
        "s3": "multi",
        "collaborative": "switch",
        "gpu_count": "count",
        "lifetime_hours": "count",
    }.get(key, "single")


def _read_field(kind: str, values: list) -> object:
    if kind == "multi":
        return list(values)
    if len(values) > 1:
        return list(values)  # two values for one choice: the check refuses the list by name
    if kind == "switch":
        # A ticked switch sends "on"; anything else is passed on for the check to refuse.
        return True if values[0] == "on" else values[0]
    if kind == "count":
        try:
            return int(values[0])
        except ValueError:  # left as text, so the check names what was sent
            return values[0]
    return values[0]


def _profile_card(
    config: ProfileConfig,
    profile: Profile,
    groups,
    remembered: Mapping,
    selected: bool,
    gpu_free: Mapping[str, tuple[int, int]],
    unavailable: str | None,
    marked: _NotAppliedMarker,
) -> str:
    """The card of `profile`; `unavailable` says why its GPUs cannot be placed (then it is disabled
    and offers no options)."""
    slug = escape(profile.slug, quote=True)
    description = (
        f'<p class="card-text text-muted mb-1 ms-4">{escape(profile.description)}</p>' if profile.description else ""
    )
    if unavailable is None:
        schema = make_options_schema(config, profile, groups)
        fields = "".join(
            _option_field(profile.slug, key, prop, remembered.get(key), marked(key))
            for key, prop in schema["properties"].items()
        )
        options = f'<div class="sciencelab-options">{fields}</div>' if fields else ""
        state, extra = _checked(selected), f"{_gpu_free_line(config, profile, gpu_free)}{options}"
    else:
        sentence = f"Not available on this hub: {unavailable}"
        state, extra = " disabled", f'<p class="sciencelab-unavailable small text-danger mb-1">{escape(sentence)}</p>'
    return (
        f'<div class="card mb-3 sciencelab-profile" data-profile="{slug}"><div class="card-body">'
        f'<div class="form-check"><input class="form-check-input" type="radio" name="profile" '
        f'id="profile-{slug}" value="{slug}"{state}>'
        f'<label class="form-check-label" for="profile-{slug}"><strong>{escape(profile.display_name)}'
        f"</strong></label></div>{description}{_fixed_resources(config, profile, marked)}{extra}</div></div>"
    )


def _fixed_resources(config: ProfileConfig, profile: Profile, marked: _NotAppliedMarker) -> str:
    """What the admin fixed for this profile, as a short list."""
    fixed = fixed_options(profile)
    items = []
    if "image" in fixed:
        items.append(("image", "Image", config.images[fixed["image"]].display_name))
    if "size" in fixed:
        items.append(("size", "Size", config.sizes[fixed["size"]].display_name))
    if "gpu_model" in fixed:
        count = f"{fixed['gpu_count']} x " if "gpu_count" in fixed else ""
        items.append(("gpu_model", "GPU", count + config.gpu_models[fixed["gpu_model"]].display_name))
    if fixed.get("cvmfs"):
        items.append(("cvmfs", "CVMFS", ", ".join(fixed["cvmfs"])))
    if fixed.get("s3"):
        items.append(("s3", "S3", ", ".join(config.s3_buckets[name].display_name for name in fixed["s3"])))
    if "collaborative" in fixed:
        items.append(("collaborative", "Collaboration", "on" if fixed["collaborative"] else "off"))
    if profile.lifetime is not None and not profile.lifetime.offered:
        items.append(("lifetime", "Session length", describe_duration(profile.lifetime.default)))
    if not items:
        return ""
    lines = "".join(
        f'<li><span class="text-muted">{escape(label)}:</span> {escape(value)}{marked(key)}</li>'
        for key, label, value in items
    )
    return f'<ul class="sciencelab-resources small">{lines}</ul>'


def _gpu_free_line(config: ProfileConfig, profile: Profile, gpu_free: Mapping[str, tuple[int, int]]) -> str:
    """'2 of 4 NVIDIA A100 80 GB free' for each GPU model of the profile."""
    if profile.gpu_model is None:
        return ""
    parts = []
    for choice in profile.gpu_model.choices:
        model = config.gpu_models[choice.value]
        if model.name in gpu_free:
            free, total = gpu_free[model.name]
            parts.append(f"{free} of {total} {model.display_name} free")
    if not parts:
        return ""
    return f'<p class="sciencelab-gpu-free small text-muted mb-1">{escape("; ".join(parts))}</p>'


def _option_field(slug: str, key: str, prop: dict, remembered: object, marker: str) -> str:
    """One form field for option `key`, from its JSON Schema `prop`; `marker` follows its label."""
    name = escape(f"{slug}.{key}", quote=True)
    field_id = escape(f"{slug}-{key}", quote=True)
    label = escape(prop["title"]) + marker
    if prop["type"] == "integer":
        value = (
            remembered
            if isinstance(remembered, int) and prop["minimum"] <= remembered <= prop["maximum"]
            else prop["default"]
        )
        return (
            f'<div class="mb-2"><label class="form-label" for="{field_id}">{label}</label>'
            f'<input class="form-control" type="number" name="{name}" id="{field_id}" '
            f'min="{prop["minimum"]}" max="{prop["maximum"]}" step="1" value="{value}"></div>'
        )
    if prop["type"] == "boolean":
        on = remembered if isinstance(remembered, bool) else prop.get("default", False)
        return (
            f'<div class="form-check form-switch mb-2"><input class="form-check-input" type="checkbox" '
            f'role="switch" name="{name}" id="{field_id}" value="on"{_checked(on)}>'
            f'<label class="form-check-label" for="{field_id}">{label}</label></div>'
        )
    if prop["type"] == "array":
        choices = prop["items"]["oneOf"]
        allowed = {c["const"] for c in choices}
        ticked = remembered if isinstance(remembered, list) and set(remembered) <= allowed else prop["default"]
        boxes = "".join(
            f'<div class="form-check"><input class="form-check-input" type="checkbox" name="{name}" '
            f'id="{field_id}-{index}" value="{escape(c["const"], quote=True)}"{_checked(c["const"] in ticked)}>'
            f'<label class="form-check-label" for="{field_id}-{index}">{escape(c["title"])}</label></div>'
            for index, c in enumerate(choices)
        )
        return f'<fieldset class="mb-2"><legend class="form-label fs-6">{label}</legend>{boxes}</fieldset>'
    choices = prop["oneOf"]
    chosen = remembered if any(c["const"] == remembered for c in choices) else prop.get("default")
    items = "".join(
        f'<option value="{escape(c["const"], quote=True)}"{" selected" if c["const"] == chosen else ""}>'
        f"{escape(c['title'])}</option>"
        for c in choices
    )
    return (
        f'<div class="mb-2"><label class="form-label" for="{field_id}">{label}</label>'
        f'<select class="form-select" name="{name}" id="{field_id}">{items}</select></div>'
    )


def _checked(on: bool) -> str:
    return ' checked="checked"' if on else ""
