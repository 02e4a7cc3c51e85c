"""`runs_on: slurm` profiles, the pure parts: the exact job script, SLURM's words on the spawn page,
and what a user may send never reaching the script except as checked numbers and admin names."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sciencelab_spawner.profile_config import make_profile_config
from sciencelab_spawner.slurm_jobs import SlurmScriptError, describe_job, make_slurm_script
from sciencelab_spawner.user_options import SlurmJob, UserOptionsError, resolve_user_options

CONFIG = make_profile_config(
    {
        "gpu_models": {"a100": {"display_name": "A100", "slurm_gres": "a100"}},
        "profiles": [
            {
                "slug": "hpc-gpu",
                "display_name": "A100 on the cluster",
                "runs_on": "slurm",
                "lifetime": {"min": "1h", "max": "12h", "default": "4h"},
                "size": {"cpu_limit": 7.5, "mem_limit": "32G"},
                "gpu": {"model": "a100", "count": {"min": 1, "max": 4}},
                "slurm": {
                    "partition": {"choices": ["gpu", {"value": "gpu-long", "allowed_groups": ["cms"]}]},
                    "account": "cms-analysis",
                    "qos": {"choices": ["normal", "high"], "default": "normal"},
                    "modules": ["cuda/12.4", "python/3.11"],
                    "setup": ["source /opt/lab/bin/activate"],
                    "container": "/cvmfs/unpacked.cern.ch/lab:2026.11",
                },
            }
        ],
    },
    "profiles.yaml",
)
COMMAND = ["batchspawner-singleuser", "jupyterhub-singleuser", "--ServerApp.default_url=/lab"]


def script_for(options: dict, groups=("cms",), config=CONFIG, command=COMMAND) -> str:
    resolved = resolve_user_options(config, options, groups)
    return make_slurm_script(
        job=resolved.slurm,
        job_name="sciencelab-alice",
        walltime=resolved.session.lifetime,
        gpu_count=resolved.gpu_count,
        gpu_gres=resolved.gpu_model.slurm_gres,
        size=resolved.size,
        workdir="/home/alice",
        command=command,
    )


def test_the_job_script_exactly():
    options = {"profile": "hpc-gpu", "partition": "gpu-long", "qos": "high", "gpu_count": 2, "lifetime_hours": 6}
    assert script_for(options) == (
        "#!/bin/bash\n"
        "#SBATCH --job-name=sciencelab-alice\n"
        "#SBATCH --chdir=/home/alice\n"
        "#SBATCH --output=/home/alice/.sciencelab-slurm-%j.log\n"
        "#SBATCH --time=360\n"
        "#SBATCH --export=ALL\n"
        "#SBATCH --partition=gpu-long\n"
        "#SBATCH --account=cms-analysis\n"
        "#SBATCH --qos=high\n"
        "#SBATCH --gres=gpu:a100:2\n"
        "#SBATCH --cpus-per-task=8\n"
        "#SBATCH --mem=32768M\n"
        "\n"
        "set -euo pipefail\n"
        "module load cuda/12.4 python/3.11\n"
        "source /opt/lab/bin/activate\n"
        "exec apptainer exec --nv /cvmfs/unpacked.cern.ch/lab:2026.11 batchspawner-singleuser "
        "jupyterhub-singleuser --ServerApp.default_url=/lab\n"
    )


def test_a_minimal_job_and_quoted_arguments():
    script = make_slurm_script(
        job=SlurmJob(),
        job_name="sciencelab-bob",
        walltime=90,
        gpu_count=0,
        gpu_gres=None,
        size=None,
        workdir="/home/bob",
        command=["jupyterhub-singleuser", "--ServerApp.notebook_dir=/home/bob/my notebooks"],
    )
    assert script.splitlines()[4:6] == ["#SBATCH --time=2", "#SBATCH --export=ALL"]
    assert script.endswith("exec jupyterhub-singleuser '--ServerApp.notebook_dir=/home/bob/my notebooks'\n")


def test_a_path_an_sbatch_line_cannot_hold_is_refused():
    with pytest.raises(SlurmScriptError, match="the working directory '/home/a b' has characters"):
        make_slurm_script(
            job=SlurmJob(),
            job_name="x",
            walltime=60,
            gpu_count=0,
            gpu_gres=None,
            size=None,
            workdir="/home/a b",
            command=[],
        )


def test_a_choice_kept_for_a_group_is_refused_to_others():
    with pytest.raises(UserOptionsError) as error:
        script_for({"profile": "hpc-gpu", "partition": "gpu-long"}, groups=())
    assert (error.value.status_code, str(error.value)) == (
        403,
        "partition: 'gpu-long' is only for members of cms; choose one of: gpu",
    )


# Anything JSON can carry, and strings built to break out of an #SBATCH line or a shell line.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["gpu\n#SBATCH --uid=0", "gpu; rm -rf ~", "$(id)", "`id`", "gpu --qos=high", "../../etc"]),
)
hostile = st.one_of(
    hostile_text, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(), st.lists(hostile_text)
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(key=st.sampled_from(["partition", "account", "qos", "gpu_count", "lifetime_hours", "profile"]), value=hostile)
def test_what_users_send_reaches_the_script_only_as_checked_values(key, value):
    try:
        script = script_for({"profile": "hpc-gpu", key: value})
    except UserOptionsError:
        return
    admin_names = {"gpu", "gpu-long", "cms-analysis", "normal", "high", "hpc-gpu"}
    # A name the admin listed, or a whole number (JSON's 2.0 is one).
    assert value in admin_names or (
        isinstance(value, int | float) and not isinstance(value, bool) and value == int(value)
    )
    # Every line is one the admin's profile or a number makes: nothing else.
    for line in script.splitlines():
        assert "\n" not in line and "$(" not in line and "`" not in line and ";" not in line


@pytest.mark.parametrize(
    ("job_id", "status", "line"),
    [
        ("", "", "Submitting the SLURM job"),
        ("42", "PENDING|Priority|n/a", "SLURM job 42 is waiting in the queue (reason: Priority)"),
        ("42", "PENDING|Resources|", "SLURM job 42 is waiting in the queue (reason: Resources)"),
        ("42", "RUNNING|None|node-07", "SLURM job 42 runs on node-07; JupyterLab is starting"),
        ("42", "", "SLURM job 42: no answer from squeue yet"),
    ],
)
def test_the_spawn_page_says_what_slurm_says(job_id, status, line):
    assert describe_job(job_id, status) == line


def test_the_admin_guide_shows_the_script_the_code_makes():
    import re
    from pathlib import Path

    from sciencelab_spawner.profile_config import load_profiles_yaml
    from sciencelab_spawner.slurm_jobs import SlurmJobSpawner

    guide = (Path(__file__).parent.parent / "docs" / "admin-profiles.md").read_text()
    section = guide.split("## Profiles on HPC")[1]
    profiles, script = re.findall(r"```(?:yaml)?\n(.*?)```", section, re.S)[:2]
    config = load_profiles_yaml(profiles, "docs/admin-profiles.md")
    options = {"profile": "hpc-gpu", "gpu_count": 2, "lifetime_hours": 6}
    command = SlurmJobSpawner.class_traits()["job_command"].default()
    assert script == script_for(options, ["gpu-users"], config, command)
