"""KubeSpawner's private names the Kubernetes spawner cannot avoid."""

from kubespawner import KubeSpawner

PRIVATE_NAMES = ("kubespawner.spawner:KubeSpawner._expand_user_properties",)


def expand_name_template(spawner: KubeSpawner, template: str) -> str:
    """`template` with KubeSpawner's name fields of `spawner`'s server ({username} is the user's
    safe slug, {servername}, {user_server}, ...), exactly as it expands `pod_name_template`."""
    # ref: https://github.com/jupyterhub/kubespawner/blob/7.1.0/kubespawner/spawner.py#L2092
    # KubeSpawner expands only its own templates and offers no public call for another one:
    # ref: https://github.com/jupyterhub/kubespawner/issues/519
    return spawner._expand_user_properties(template)
