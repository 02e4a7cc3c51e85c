"""Profile configurations the tests share: the documented example file and a small inline one."""

from pathlib import Path

from sciencelab_spawner.profile_config import load_profiles_yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_FILE = REPO / "docs" / "examples" / "profiles.yaml"


def example_config():
    """docs/examples/profiles.yaml: CPU, A100, MIG and collaborative profiles, CVMFS, S3, quotas."""
    return load_profiles_yaml(EXAMPLE_FILE.read_text(), "profiles.yaml")
