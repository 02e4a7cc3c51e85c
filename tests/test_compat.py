"""Canaries for the private names of dependencies we use: one check per name in every compat module.

A dependency upgrade that renames or drops one fails here, naming the symbol and the installed
version, instead of somewhere deep in a spawn or a cluster.
"""

import importlib
import importlib.metadata
import pkgutil

import pytest

import sciencelab.compat
import sciencelab_spawner.compat


def compat_modules():
    for package in (sciencelab.compat, sciencelab_spawner.compat):
        for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            yield module.name


def private_names():
    for module_name in compat_modules():
        module = importlib.import_module(module_name)
        for name in module.PRIVATE_NAMES:
            yield pytest.param(module_name, name, id=name)


def installed_version(module_path: str) -> str:
    top = module_path.split(".")[0]
    for distribution in importlib.metadata.packages_distributions().get(top, [top]):
        try:
            return f"{distribution} {importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return f"{top} (version unknown)"


@pytest.mark.parametrize(("compat_module", "name"), list(private_names()))
def test_the_installed_dependency_still_has_the_private_name(compat_module, name):
    module_path, _, attributes = name.partition(":")
    target = importlib.import_module(module_path)
    # "Class()._attribute": an instance's, which the module's canary() checks; the class must exist.
    attributes, on_instance, _ = attributes.partition("()")
    if on_instance:
        assert hasattr(importlib.import_module(compat_module), "canary"), f"{compat_module} needs a canary() for {name}"
    for attribute in filter(None, attributes.split(".")):
        assert hasattr(target, attribute), (
            f"{name} (used by {compat_module}) is missing from the installed {installed_version(module_path)}"
        )
        target = getattr(target, attribute)


@pytest.mark.parametrize(
    "compat_module", [m for m in compat_modules() if hasattr(importlib.import_module(m), "canary")]
)
def test_the_private_behaviour_a_compat_module_relies_on_still_holds(compat_module):
    importlib.import_module(compat_module).canary()


def test_every_compat_module_lists_its_private_names():
    for module_name in compat_modules():
        names = importlib.import_module(module_name).PRIVATE_NAMES
        assert names and all(":" in name for name in names), module_name
