"""Manifests checked against the official Kubernetes schemas, offline, as `kubernetes-validate --strict`."""

import kubernetes_validate
from kubernetes_validate.utils import all_versions, major_minor

# kubernetes-validate ships no schema as old as the test server (1.20); its oldest is the closest.
OLDEST_SCHEMA = major_minor(all_versions()[0])


def validate_strictly(manifest: dict, version: str = OLDEST_SCHEMA):
    """Raise AssertionError naming the object, the field and the rule when `manifest` breaks the
    schema of Kubernetes `version`; strict: unknown fields are errors too."""
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise AssertionError(
            f"{manifest.get('kind')} {manifest.get('metadata', {}).get('name')!r} at {where}: "
            f"{error.message} (Kubernetes {version} schema)"
        ) from None
