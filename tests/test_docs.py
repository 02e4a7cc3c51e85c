"""The docs stay true: the generated reference is current and every profile file they show is valid."""

import re
import textwrap

import pytest
import yaml

from sciencelab_spawner.profile_config import ProfileConfigError, load_profiles_yaml, profiles_schema
from sciencelab_spawner.profile_docs import REFERENCE_SETTINGS, make_profiles_reference

from .profile_examples import EXAMPLE_FILE, REPO

YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


def test_profiles_reference_is_generated_from_the_schema():
    expected = make_profiles_reference(profiles_schema(), REFERENCE_SETTINGS)
    assert (REPO / "docs" / "profiles-reference.md").read_text() == expected, "run `make docs`"


@pytest.mark.parametrize("document", ["README.md", "docs/admin-profiles.md"])
def test_profile_files_in_the_docs_are_valid(document):
    # Profile files are the YAML blocks with a top-level `profiles:` (others are Dask configuration).
    blocks = [b for b in YAML_BLOCK.findall((REPO / document).read_text()) if re.search(r"^profiles:", b, re.M)]
    assert blocks, f"{document} shows no profile file"
    # Every one is valid; one is the complete example, with a profile of each kind.
    slugs = [{p.slug for p in load_profiles_yaml(block, document).profiles} for block in blocks]
    assert any(found >= {"cpu", "a100", "mig", "collab"} for found in slugs)


def test_admin_guide_shows_the_example_file_whole():
    assert EXAMPLE_FILE.read_text() in (REPO / "docs" / "admin-profiles.md").read_text()


def test_kubernetes_guide_shows_valid_manifests_and_the_rbac_the_tests_grant():
    from .k8s.apiserver import HUB_CLUSTER_RULES, HUB_NAMESPACED_RULES
    from .k8s.schema import validate_strictly

    text = (REPO / "docs" / "admin-kubernetes.md").read_text()
    assert EXAMPLE_FILE.read_text() in text
    manifests = [
        manifest
        for block in YAML_BLOCK.findall(text)
        if "kind:" in block
        for manifest in yaml.safe_load_all(textwrap.dedent(block))
    ]
    for manifest in manifests:
        validate_strictly(manifest)
    rules = {manifest["kind"]: manifest["rules"] for manifest in manifests if "rules" in manifest}
    assert rules == {"Role": HUB_NAMESPACED_RULES, "ClusterRole": HUB_CLUSTER_RULES}


def test_offload_guide_shows_a_valid_profile_file_and_the_real_refusal():
    text = (REPO / "docs" / "hpc-offload.md").read_text()
    (block,) = [b for b in YAML_BLOCK.findall(text) if re.search(r"^profiles:", b, re.M)]
    config = load_profiles_yaml(block, "profiles.yaml")
    assert [p.slug for p in config.profiles if p.offload is not None] == ["hpc-a100"]
    # The refusal it quotes is the one a profile with CVMFS and `offload` gets.
    with_cvmfs = block.replace("images:", "cvmfs_repositories: {sft.cern.ch: {}}\nimages:").replace(
        "    lifetime: 8h\n", "    lifetime: 8h\n    cvmfs: [sft.cern.ch]\n"
    )
    with pytest.raises(ProfileConfigError) as error:
        load_profiles_yaml(with_cvmfs, "profiles.yaml")
    assert f"```\n{error.value}\n```" in text
    assert "(hpc-offload.md)" in (REPO / "docs" / "admin-kubernetes.md").read_text()
