"""The profile file the hub re-reads, where a Kubernetes ConfigMap volume holds it."""

import logging
import os
import shutil

from sciencelab_spawner.profile_source import profile_file

PROFILES = "profiles:\n  - {{slug: {slug}, display_name: {slug}}}\n"


def write_configmap_version(folder, version: str, slug: str):
    """Lay out `folder` as the kubelet's atomic writer does: the file is `profiles.yaml` ->
    `..data/profiles.yaml`, and `..data` -> the current timestamped folder; a new version is a
    new folder, `..data` switched to it by a rename, the old folder deleted."""
    (folder / version).mkdir()
    (folder / version / "profiles.yaml").write_text(PROFILES.format(slug=slug))
    old = os.readlink(folder / "..data") if (folder / "..data").is_symlink() else None
    os.symlink(version, folder / "..data_tmp")
    os.replace(folder / "..data_tmp", folder / "..data")
    if not (folder / "profiles.yaml").is_symlink():
        os.symlink("..data/profiles.yaml", folder / "profiles.yaml")
    if old:
        shutil.rmtree(folder / old)


def test_a_configmap_update_is_read_after_the_kubelet_swaps_its_folder(tmp_path):
    write_configmap_version(tmp_path, "..2026_12_04_06_00_00.1", "cpu")
    source = profile_file(tmp_path / "profiles.yaml", logging.getLogger("test"))
    assert [p.slug for p in source.current().profiles] == ["cpu"]
    write_configmap_version(tmp_path, "..2026_12_04_06_01_00.2", "gpu")
    assert [p.slug for p in source.current().profiles] == ["gpu"]
