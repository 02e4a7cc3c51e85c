"""Property-based fuzzing of resolution: generated option sets against an independent oracle."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sciencelab_spawner.user_options import UserOptionsError, resolve_user_options

from .option_oracle import MULTI_KEYS, RAW, SINGLE_KEYS, choices_of, expected_status, lookup
from .profile_examples import example_config

CONFIG = example_config()

SLUGS = [p["slug"] for p in RAW["profiles"]]
NAMES = [*RAW["images"], *RAW["sizes"], *RAW["gpu_models"], *RAW["cvmfs_repositories"], *RAW["s3_buckets"]]
KEYS = ["profile", "image", "size", "gpu_model", "gpu_count", "cvmfs", "s3", "collaborative"]
JUNK_KEYS = ["environment", "node_selector", "cpu_limit", "", "profile ", "Image"]
JUNK_STRINGS = [
    "",
    "../etc/passwd",
    "small\n+Requirements = true",
    "$(id)",
    "{{7*7}}",
    "ghcr.io/x/y:latest",
    "<script>alert(1)</script>",
    "cpu ",
    "CPU",
    "\x00",
    "a" * 300,
]

scalar = st.one_of(
    st.sampled_from(SLUGS + NAMES + JUNK_STRINGS),
    st.integers(min_value=-3, max_value=5),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-3, max_value=5),
    st.booleans(),
    st.none(),
    # JSON carries no lone surrogates, so the REST fuzz can send every string.
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
)
value = st.one_of(
    scalar, st.lists(scalar, max_size=4), st.dictionaries(st.sampled_from(["bucket", "value"]), scalar, max_size=2)
)


@st.composite
def valid_options(draw, raw: dict = RAW) -> dict:
    """Options an admin's form could produce for some profile of `raw`: every value among its
    choices (group-restricted ones included, so 403s come up too)."""
    profile = draw(st.sampled_from(raw["profiles"]))
    chosen = {"profile": profile["slug"]} if draw(st.booleans()) or not profile.get("default") else {}
    for key, path in {**SINGLE_KEYS, **MULTI_KEYS}.items():
        choices = [v for v, _ in choices_of(lookup(profile, path))]
        if choices and draw(st.booleans()):
            if key in MULTI_KEYS:
                chosen[key] = draw(st.lists(st.sampled_from(choices), unique=True))
            else:
                chosen[key] = draw(st.sampled_from(choices))
    count = lookup(profile, ("gpu", "count"))
    if isinstance(count, dict) and draw(st.booleans()):
        chosen["gpu_count"] = draw(st.integers(min_value=count.get("min", 1), max_value=count["max"]))
    return chosen


@st.composite
def mutated_options(draw, raw: dict = RAW) -> dict:
    """Valid options with one or two things broken: a value, a key, a duplicate, the wrong profile."""
    chosen = draw(valid_options(raw))
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        mutation = draw(st.sampled_from(["value", "key", "duplicate", "profile", "drop"]))
        keys = list(chosen)
        if mutation == "value" and keys:
            chosen[draw(st.sampled_from(keys))] = draw(value)
        elif mutation == "key":
            chosen[draw(st.sampled_from(KEYS + JUNK_KEYS))] = draw(value)
        elif mutation == "duplicate" and any(isinstance(v, list) and v for v in chosen.values()):
            key = draw(st.sampled_from([k for k, v in chosen.items() if isinstance(v, list) and v]))
            chosen[key] = [*chosen[key], chosen[key][0]]
        elif mutation == "profile":
            chosen["profile"] = draw(st.sampled_from(SLUGS + JUNK_STRINGS))
        elif mutation == "drop" and keys:
            chosen.pop(draw(st.sampled_from(keys)))
    return chosen


options = st.one_of(
    valid_options(),
    mutated_options(),
    st.dictionaries(st.sampled_from(KEYS + JUNK_KEYS), value, max_size=5),
    st.lists(scalar, max_size=2),
    st.none(),
)
groups = st.sampled_from([[], ["gpu-users"], ["other"], ["gpu-users", "other"]])


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(options, groups)
def test_resolution_agrees_with_the_oracle(user_options, user_groups):
    expected = expected_status(user_options, user_groups)
    try:
        resolved = resolve_user_options(CONFIG, user_options, user_groups)
    except UserOptionsError as error:
        assert error.status_code == expected, (user_options, user_groups, str(error))
        assert str(error).startswith(f"{error.field}: ")
        return
    assert expected == 200, (user_options, user_groups)
    # What was accepted is the admin's, whatever was sent.
    assert resolved.slug in SLUGS
    assert resolved.image is None or resolved.image is CONFIG.images[resolved.image.name]
    assert resolved.size is None or resolved.size is CONFIG.sizes[resolved.size.name]
    assert all(repo is CONFIG.cvmfs_repositories[repo.name] for repo in resolved.cvmfs)
    assert all(bucket is CONFIG.s3_buckets[bucket.name] for bucket in resolved.s3)
    assert 0 <= resolved.gpu_count <= 2


@settings(max_examples=2_000, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS + JUNK_KEYS), value, max_size=5), groups)
def test_remembered_options_never_fail_for_what_a_user_chose(user_options, user_groups):
    # Remembered options that are no longer valid fall back to defaults; only a profile-level
    # problem such as a quota may still refuse, and this config has none at this stage.
    resolved = resolve_user_options(CONFIG, user_options, user_groups, remembered=True)
    assert resolved.slug in SLUGS
