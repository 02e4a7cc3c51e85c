"""GPUs this hub cannot place (a disabled profile, a 400) against GPUs that are only taken (a 409),
and how JupyterHub shows a refusal: the pure functions, exactly."""

import pytest
from jupyterhub.utils import format_exception

from sciencelab_spawner.gpu_placement import gpu_placement_problem
from sciencelab_spawner.local_gpus import GpuDevice, GpuInventory, GpuUnavailableError, pick_gpus
from sciencelab_spawner.profile_config import make_profile_config
from sciencelab_spawner.profile_spawner import SpawnRefusal
from sciencelab_spawner.service import make_profiles_document
from sciencelab_spawner.user_options import UserOptionsError

CONFIG = make_profile_config(
    {
        "gpu_models": {
            "a100": {"display_name": "A100", "node_label": "NVIDIA-A100-SXM4-80GB"},
            "h100": {"display_name": "H100", "node_label": "NVIDIA-H100-80GB-HBM3"},
        },
        "profiles": [
            {"slug": "cpu", "display_name": "CPU"},
            {"slug": "one", "display_name": "One A100", "default": True, "gpu": {"model": "a100", "count": 1}},
            {"slug": "pair", "display_name": "Two A100", "gpu": {"model": "a100", "count": 2}},
            {"slug": "any", "display_name": "A100 or H100", "gpu": {"model": {"choices": ["a100", "h100"]}}},
        ],
    },
    "test",
)
PROFILES = {profile.slug: profile for profile in CONFIG.profiles}
A100 = CONFIG.gpu_models["a100"]
H100 = CONFIG.gpu_models["h100"]
ONE_A100 = GpuInventory((GpuDevice("GPU-1", "NVIDIA A100-SXM4-80GB"),))


@pytest.mark.parametrize(
    ("slug", "gpu_free", "gpu_problem", "problem"),
    [
        ("cpu", {}, "no GPU on this machine", None),
        (
            "one",
            {},
            "no GPU on this machine (NVML: Driver Not Loaded)",
            "no GPU on this machine (NVML: Driver Not Loaded)",
        ),
        ("one", {"a100": (0, 0), "h100": (2, 2)}, None, "this hub has no A100"),
        ("one", {"a100": (0, 1)}, None, None),  # taken, not missing: offered, a 409 at the spawn
        ("pair", {"a100": (1, 1)}, None, "this hub has 1 A100; the profile needs at least 2 of one model"),
        ("any", {"a100": (0, 0), "h100": (0, 0)}, None, "this hub has no A100 and no H100"),
        ("any", {"a100": (0, 0), "h100": (0, 3)}, None, None),
    ],
)
def test_gpu_placement_problem(slug, gpu_free, gpu_problem, problem):
    assert gpu_placement_problem(CONFIG, PROFILES[slug], gpu_free, gpu_problem) == problem


@pytest.mark.parametrize(
    ("inventory", "model", "count", "claimed", "status", "message"),
    [
        (
            GpuInventory(problem="NVML: Driver Not Loaded"),
            A100,
            1,
            set(),
            400,
            "gpu_model: 'a100' is not available; no GPU on this machine (NVML: Driver Not Loaded); "
            "choose a profile without GPUs",
        ),
        (
            ONE_A100,
            H100,
            1,
            set(),
            400,
            "gpu_model: 'h100' is not available; this machine has no H100; choose another profile",
        ),
        (
            ONE_A100,
            A100,
            2,
            set(),
            400,
            "gpu_count: 2 is more than this machine has; this machine has 1 A100; ask for at most 1",
        ),
        (
            ONE_A100,
            A100,
            1,
            {"GPU-1"},
            409,
            "gpu_count: 1 is more than is free; 0 of 1 A100 free on this machine; "
            "ask for at most 0 or try again when a GPU is released",
        ),
    ],
)
def test_pick_gpus_says_400_for_gpus_the_machine_lacks_and_409_for_gpus_taken(
    inventory, model, count, claimed, status, message
):
    with pytest.raises(UserOptionsError) as refusal:
        pick_gpus(inventory, model, count, claimed)
    assert (refusal.value.status_code, str(refusal.value)) == (status, message)
    assert isinstance(refusal.value, GpuUnavailableError) == (status == 409)
    assert pick_gpus(ONE_A100, A100, 1, set()) == ("GPU-1",)


def test_profiles_api_says_why_a_profile_cannot_start_and_never_defaults_to_it():
    document = make_profiles_document(CONFIG, frozenset(), {"a100": (1, 1), "h100": (0, 0)}, None, 0)
    assert [(p["slug"], p["default"], p["unavailable"]) for p in document["profiles"]] == [
        ("cpu", False, None),
        ("one", True, None),
        ("pair", False, "this hub has 1 A100; the profile needs at least 2 of one model"),
        ("any", False, None),
    ]
    without_gpus = make_profiles_document(CONFIG, frozenset(), {}, "no GPU on this machine", 0)
    assert [(p["slug"], p["default"]) for p in without_gpus["profiles"] if p["default"]] == [("cpu", True)]


def test_a_refusal_reads_as_its_message_on_jupyterhubs_pages():
    refusal = SpawnRefusal("gpu_model: 'any' is not available; no GPU here", reason="gpu_model", status_code=400)
    # JupyterHub's spawn form and spawn page show what `format_exception` gives.
    assert format_exception(refusal) == ("gpu_model: 'any' is not available; no GPU here", None)
    assert (refusal.status_code, refusal.message) == (400, "gpu_model: 'any' is not available; no GPU here")


def test_gpus_of_profiles_that_run_elsewhere_are_placed_by_their_scheduler_not_counted_by_the_hub():
    config = make_profile_config(
        {
            "gpu_models": {"a100": {"display_name": "A100", "node_label": "x", "slurm_gres": "a100"}},
            "profiles": [
                {"slug": "here", "display_name": "Here", "gpu": {"model": "a100", "count": 1}},
                {
                    "slug": "hpc",
                    "display_name": "HPC",
                    "runs_on": "slurm",
                    "lifetime": "1h",
                    "slurm": {"partition": "gpu"},
                    "gpu": {"model": "a100", "count": 1},
                },
                {"slug": "pod", "display_name": "Pod", "runs_on": "kubernetes", "gpu": {"model": "a100", "count": 1}},
            ],
        },
        "test",
    )
    no_gpu = "no GPU on this machine"
    problems = {p.slug: gpu_placement_problem(config, p, {}, no_gpu, "local") for p in config.profiles}
    assert problems == {"here": no_gpu, "hpc": None, "pod": None}
    on_kubernetes = {
        p.slug: gpu_placement_problem(config, p, {"a100": (0, 0)}, None, "kubernetes") for p in config.profiles
    }
    assert on_kubernetes == {"here": "this hub has no A100", "hpc": None, "pod": "this hub has no A100"}
