"""Resolving untrusted user_options against the admin's profiles: exact results and every refusal."""

from types import MappingProxyType

import pytest

from sciencelab_spawner.profile_config import make_profile_config
from sciencelab_spawner.session_terms import SessionTerms
from sciencelab_spawner.user_options import (
    ForbiddenOptionError,
    ResolvedProfile,
    UserOptionsError,
    make_options_schema,
    make_user_options_schema,
    resolve_user_options,
    visible_profiles,
)

from .profile_examples import example_config

CONFIG = example_config()
GPU_USERS = ["gpu-users"]


def resolve(options, groups=(), **kwargs):
    return resolve_user_options(CONFIG, options, groups, **kwargs)


def test_no_options_give_the_default_profile_with_its_defaults():
    assert resolve({}) == ResolvedProfile(
        slug="cpu",
        display_name="CPU analysis",
        description="Notebooks, plotting and histogramming with uproot, awkward and coffea.",
        image=CONFIG.images["python"],
        size=CONFIG.sizes["small"],
        cvmfs=(CONFIG.cvmfs_repositories["sft.cern.ch"],),
        options=MappingProxyType({}),
    )


def test_every_choice_of_the_cpu_profile():
    resolved = resolve(
        {
            "profile": "cpu",
            "image": "root",
            "size": "large",
            "cvmfs": ["sft.cern.ch", "cms.cern.ch"],
            "s3": ["scratch", "cms-opendata"],
        },
        GPU_USERS,
    )
    assert (resolved.image, resolved.size) == (CONFIG.images["root"], CONFIG.sizes["large"])
    # In the admin's order, whatever order the user sent.
    assert resolved.cvmfs == (CONFIG.cvmfs_repositories["cms.cern.ch"], CONFIG.cvmfs_repositories["sft.cern.ch"])
    assert resolved.s3 == (CONFIG.s3_buckets["cms-opendata"], CONFIG.s3_buckets["scratch"])
    assert resolved.options == {
        "profile": "cpu",
        "image": "root",
        "size": "large",
        "cvmfs": ["sft.cern.ch", "cms.cern.ch"],
        "s3": ["scratch", "cms-opendata"],
    }


def test_empty_lists_mean_none():
    resolved = resolve({"profile": "cpu", "cvmfs": [], "s3": []})
    assert (resolved.cvmfs, resolved.s3) == ((), ())


def test_gpu_profile_with_admin_settings():
    resolved = resolve({"profile": "a100", "gpu_count": 2}, GPU_USERS)
    assert resolved == ResolvedProfile(
        slug="a100",
        display_name="NVIDIA A100 (1 or 2 GPUs)",
        description="Training and inference on whole A100 GPUs.",
        image=CONFIG.images["root"],
        size=CONFIG.sizes["large"],
        gpu_model=CONFIG.gpu_models["a100"],
        gpu_count=2,
        cvmfs=(CONFIG.cvmfs_repositories["sft.cern.ch"],),
        tolerations=(MappingProxyType({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}),),
        options=MappingProxyType({"profile": "a100", "gpu_count": 2}),
        # GPUs are scarce: a server holding them is stopped after 2 h idle unless the admin says otherwise.
        session=SessionTerms(idle_timeout=7200),
    )


def test_mig_slice_is_fixed():
    resolved = resolve({"profile": "mig"})
    assert (resolved.gpu_model, resolved.gpu_count) == (CONFIG.gpu_models["a100-1g.10gb"], 1)


def test_collaborative_switch_changes_image_and_drops_gpus():
    on = resolve({"profile": "collab"})
    assert (on.collaborative, on.image) == (True, CONFIG.images["collaborative"])
    assert (on.environment, on.node_selector) == ({"SCIENCELAB_SITE": "example"}, {"sciencelab.io/pool": "interactive"})
    off = resolve({"profile": "collab", "collaborative": False})
    assert (off.collaborative, off.image) == (False, CONFIG.images["python"])


def test_collaborative_keeps_gpus_only_when_the_admin_says_so():
    profiles = {
        "images": {"py": {"image": "py"}, "collab": {"image": "collab"}},
        "gpu_models": {"any": {}},
        "profiles": [
            {
                "slug": "drop",
                "display_name": "D",
                "image": "py",
                "gpu": {"model": "any"},
                "collaborative": {"choices": [True], "image": "collab"},
            },
            {
                "slug": "keep",
                "display_name": "K",
                "image": "py",
                "gpu": {"model": "any"},
                "collaborative": {"choices": [True], "use_gpu": True},
            },
        ],
    }
    config = make_profile_config(profiles, "setting")
    drop = resolve_user_options(config, {"profile": "drop"}, [])
    assert (drop.gpu_model, drop.gpu_count, drop.image.name) == (None, 0, "collab")
    keep = resolve_user_options(config, {"profile": "keep"}, [])
    assert (keep.gpu_model.name, keep.gpu_count, keep.image.name) == ("any", 1, "py")


def test_groups_decide_the_visible_profiles_and_default():
    assert [p.slug for p in visible_profiles(CONFIG, [])] == ["cpu", "mig", "collab"]
    assert [p.slug for p in visible_profiles(CONFIG, GPU_USERS)] == ["cpu", "a100", "mig", "collab"]
    schema = make_user_options_schema(CONFIG, [])
    assert schema["properties"]["profile"] == {
        "type": "string",
        "title": "Profile",
        "description": "The server profile to start.",
        "oneOf": [
            {"const": "cpu", "title": "CPU analysis"},
            {"const": "mig", "title": "A100 slice (MIG 1g.10gb)"},
            {"const": "collab", "title": "Collaborative notebook"},
        ],
        "default": "cpu",
    }
    assert [branch["if"]["properties"]["profile"]["const"] for branch in schema["allOf"]] == ["cpu", "mig", "collab"]


def test_options_schema_of_a_profile_for_a_group():
    cpu = CONFIG.profiles[0]
    assert make_options_schema(CONFIG, cpu, []) == {
        "type": "object",
        "title": "CPU analysis",
        "description": "Notebooks, plotting and histogramming with uproot, awkward and coffea.",
        "properties": {
            "image": {
                "title": "Image",
                "description": "The software environment of the server.",
                "type": "string",
                "oneOf": [
                    {"const": "python", "title": "Python 3.11 (SciPy, uproot, awkward)"},
                    {"const": "root", "title": "ROOT 6.32 and coffea"},
                ],
                "default": "python",
            },
            "size": {
                "title": "Size",
                "description": "CPU cores and memory.",
                "type": "string",
                "oneOf": [{"const": "small", "title": "1 CPU, 2 GB"}, {"const": "medium", "title": "2 CPUs, 4 GB"}],
                "default": "small",
            },
            "cvmfs": {
                "title": "CVMFS repositories",
                "description": "Repositories mounted read-only under /cvmfs.",
                "type": "array",
                "uniqueItems": True,
                "items": {
                    "type": "string",
                    "oneOf": [
                        {"const": "cms.cern.ch", "title": "CMS software"},
                        {"const": "atlas.cern.ch", "title": "ATLAS software"},
                        {"const": "sft.cern.ch", "title": "LCG views (sft.cern.ch)"},
                    ],
                },
                "default": ["sft.cern.ch"],
            },
            "s3": {
                "title": "S3 buckets",
                "description": "Buckets attached to the server.",
                "type": "array",
                "uniqueItems": True,
                "items": {
                    "type": "string",
                    "oneOf": [
                        {"const": "cms-opendata", "title": "CMS open data (read-only)"},
                        {"const": "scratch", "title": "Group scratch"},
                    ],
                },
                "default": [],
            },
        },
        "additionalProperties": False,
    }
    gpu = make_options_schema(CONFIG, CONFIG.profiles[1], GPU_USERS)["properties"]
    assert gpu == {
        "gpu_count": {
            "title": "GPUs",
            "description": "How many GPUs (or MIG slices) to attach.",
            "type": "integer",
            "minimum": 1,
            "maximum": 2,
            "default": 1,
        }
    }
    collab = make_options_schema(CONFIG, CONFIG.profiles[3], [])["properties"]
    assert collab["collaborative"] == {
        "title": "Real-time collaboration",
        "description": "Co-edit notebooks with others in real time.",
        "type": "boolean",
        "oneOf": [{"const": False, "title": "Off"}, {"const": True, "title": "On"}],
        "default": True,
    }


@pytest.mark.parametrize(
    ("options", "groups", "error", "message"),
    [
        (
            {"profile": "no-such"},
            [],
            UserOptionsError,
            "profile: 'no-such' is not allowed; choose one of: cpu, mig, collab",
        ),
        ({"profile": None}, [], UserOptionsError, "profile: None is not allowed; choose one of: cpu, mig, collab"),
        (
            {"profile": ["cpu"]},
            [],
            UserOptionsError,
            "profile: ['cpu'] is not allowed; choose one of: cpu, mig, collab",
        ),
        (
            {"profile": "a100"},
            [],
            ForbiddenOptionError,
            "profile: 'a100' is only for members of gpu-users; choose one of: cpu, mig, collab",
        ),
        (
            {"profile": "cpu", "size": "large"},
            [],
            ForbiddenOptionError,
            "size: 'large' is only for members of gpu-users; choose one of: small, medium",
        ),
        (
            {"profile": "cpu", "image": "collaborative"},
            [],
            UserOptionsError,
            "image: 'collaborative' is not allowed; choose one of: python, root",
        ),
        (
            {"profile": "cpu", "image": "ghcr.io/evil/miner:latest"},
            [],
            UserOptionsError,
            "image: 'ghcr.io/evil/miner:latest' is not allowed; choose one of: python, root",
        ),
        ({"profile": "cpu", "image": 7}, [], UserOptionsError, "image: 7 is not allowed; choose one of: python, root"),
        (
            {"profile": "cpu", "cvmfs": "sft.cern.ch"},
            [],
            UserOptionsError,
            "cvmfs: 'sft.cern.ch' is not allowed; choose any of: cms.cern.ch, atlas.cern.ch, sft.cern.ch, each at most once",
        ),
        (
            {"profile": "cpu", "cvmfs": ["sft.cern.ch", "../../etc"]},
            [],
            UserOptionsError,
            "cvmfs[1]: '../../etc' is not allowed; choose any of: cms.cern.ch, atlas.cern.ch, sft.cern.ch, each at most once",
        ),
        (
            {"profile": "cpu", "cvmfs": ["sft.cern.ch", "sft.cern.ch"]},
            [],
            UserOptionsError,
            "cvmfs: ['sft.cern.ch', 'sft.cern.ch'] lists an entry twice; choose any of: cms.cern.ch, atlas.cern.ch, "
            "sft.cern.ch, each at most once",
        ),
        (
            {"profile": "cpu", "s3": [{"bucket": "x"}]},
            [],
            UserOptionsError,
            "s3[0]: {'bucket': 'x'} is not allowed; choose any of: cms-opendata, scratch, each at most once",
        ),
        (
            {"profile": "a100", "gpu_count": 3},
            GPU_USERS,
            UserOptionsError,
            "gpu_count: 3 is not allowed; allowed: a whole number from 1 to 2",
        ),
        (
            {"profile": "a100", "gpu_count": 0},
            GPU_USERS,
            UserOptionsError,
            "gpu_count: 0 is not allowed; allowed: a whole number from 1 to 2",
        ),
        (
            {"profile": "a100", "gpu_count": "2"},
            GPU_USERS,
            UserOptionsError,
            "gpu_count: '2' is not allowed; allowed: a whole number from 1 to 2",
        ),
        (
            {"profile": "a100", "gpu_count": True},
            GPU_USERS,
            UserOptionsError,
            "gpu_count: True is not allowed; allowed: a whole number from 1 to 2",
        ),
        (
            {"profile": "a100", "gpu_count": 1.5},
            GPU_USERS,
            UserOptionsError,
            "gpu_count: 1.5 is not allowed; allowed: a whole number from 1 to 2",
        ),
        (
            {"profile": "collab", "collaborative": "yes"},
            [],
            UserOptionsError,
            "collaborative: 'yes' is not allowed; allowed: true or false",
        ),
        (
            {"profile": "mig", "gpu_count": 1},
            [],
            UserOptionsError,
            "gpu_count: 1 is not an option of this profile; options of profile 'mig': (none: everything is fixed by the admin)",
        ),
        (
            {"profile": "cpu", "environment": {"LD_PRELOAD": "x"}},
            [],
            UserOptionsError,
            "environment: {'LD_PRELOAD': 'x'} is not an option of this profile; options of profile 'cpu': image, size, cvmfs, s3",
        ),
        (
            {"image": "root", "node_selector": {}},
            [],
            UserOptionsError,
            "node_selector: {} is not an option of this profile; options of profile 'cpu': image, size, cvmfs, s3",
        ),
        (
            ["cpu"],
            [],
            UserOptionsError,
            'user_options: [\'cpu\'] is not allowed; send a JSON object such as {"profile": "<slug>"}',
        ),
    ],
)
def test_refusals_name_field_value_and_choices(options, groups, error, message):
    with pytest.raises(UserOptionsError) as refused:
        resolve(options, groups)
    assert type(refused.value) is error
    assert str(refused.value) == message
    assert refused.value.status_code == (403 if error is ForbiddenOptionError else 400)


def test_no_profile_for_the_groups_is_a_403():
    config = make_profile_config([{"slug": "a", "display_name": "A", "allowed_groups": ["x"]}], "setting")
    with pytest.raises(ForbiddenOptionError) as refused:
        resolve_user_options(config, {}, [])
    assert (
        str(refused.value)
        == "profile: None cannot be started; no profile is available to your groups; ask your hub admin"
    )


def test_remembered_options_no_longer_valid_fall_back_with_a_notice():
    resolved = resolve({"profile": "a100", "gpu_count": 2}, [], remembered=True)
    assert (resolved.slug, resolved.gpu_count, dict(resolved.options)) == ("cpu", 0, {})
    assert resolved.notices == (
        "Your last choice of profile ('a100') is no longer offered; using the default instead.",
    )
    resolved = resolve(
        {"profile": "cpu", "size": "large", "image": "root", "cvmfs": ["gone.cern.ch"]}, [], remembered=True
    )
    assert (resolved.size.name, resolved.image.name, [r.name for r in resolved.cvmfs]) == (
        "small",
        "root",
        ["sft.cern.ch"],
    )
    assert dict(resolved.options) == {"profile": "cpu", "image": "root"}
    assert resolved.notices == (
        "Your last choice of size ('large') is no longer offered; using the default instead.",
        "Your last choice of cvmfs[0] ('gone.cern.ch') is no longer offered; using the default instead.",
    )


def test_refusals_show_what_was_sent_cut_short():
    with pytest.raises(UserOptionsError) as refused:
        resolve({"profile": "cpu", "image": "x" * 500_000})
    assert str(refused.value) == f"image: '{'x' * 79}… (500002 characters) is not allowed; choose one of: python, root"
    with pytest.raises(UserOptionsError) as refused:
        resolve({"profile": "cpu", "k" * 100_000: 1})
    # The field is the SpawnException's reason too, which JupyterHub logs.
    assert refused.value.field == f"{'k' * 80}… (100000 characters)"
    assert str(refused.value).startswith(f"{'k' * 80}… (100000 characters): 1 is not an option of this profile")


def nested(depth: int) -> list:
    value = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("key", ["image", "cvmfs", "gpu_count", "profile"])
def test_values_nested_as_deep_as_json_allows_are_refused_without_recursing(key):
    # JupyterHub's REST API parses JSON nested about a thousand deep; the hub's stack is deep too.
    def deep_in_the_stack(frames: int):
        if frames:
            return deep_in_the_stack(frames - 1)
        profile = {"image": "cpu", "cvmfs": "cpu", "gpu_count": "a100"}.get(key)
        options = {"profile": profile, key: nested(950)} if profile else {"profile": nested(950)}
        with pytest.raises(UserOptionsError) as refused:
            resolve(options, GPU_USERS)
        return str(refused.value)

    assert deep_in_the_stack(300).startswith(f"{key}: [[[[...]]]] is not allowed; ")
