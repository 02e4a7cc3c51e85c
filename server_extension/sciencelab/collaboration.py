"""Real-time collaboration on or off, as the server's profile says (`collaborative`).

jupyter-collaboration has two halves. The spawner turns the server half off for a profile without
collaboration (the `jupyter_server_ydoc` extension, so no `/api/collaboration/` route answers; its
own `disable_rtc` would keep them). The lab half is its two lab extensions, which would otherwise
open every notebook through the missing routes: `make_collaboration_page_config` disables them in
JupyterLab's page config, puts back the plugins they replace (the file browser, the cell
executor), and says which mode the server runs in (`sciencelabCollaborative`) for our own panel.
With collaboration on, it disables the one plugin that would put a token in a link.
"""

import os
from collections.abc import Callable, Collection, Mapping

from jupyter_core.paths import jupyter_path
from jupyterlab_server.config import get_federated_extensions

from .info import read_profile_record

COLLABORATION_LAB_EXTENSIONS = ("@jupyter/collaboration-extension", "@jupyter/docprovider-extension")
# jupyter-collaboration's own "Share" link puts the server's token into a URL; ScienceLab's Share
# dialog makes JupyterHub share codes instead.
TOKEN_LINK_PLUGIN = "@jupyter/collaboration-extension:shared-link"
PAGE_CONFIG_KEY = "sciencelabCollaborative"

PageConfigHook = Callable[[object, dict], dict]


def make_collaboration_page_config(page_config: dict, collaborative: bool, replaced: Collection[str]) -> dict:
    """`page_config` (JupyterLab's, with `disabledExtensions` as a list) for a server with
    collaboration on or off; `replaced` are the plugins the collaboration lab extensions disable."""
    page_config = {**page_config, PAGE_CONFIG_KEY: collaborative}
    if collaborative:
        disabled = page_config.get("disabledExtensions", [])
        page_config["disabledExtensions"] = [
            *disabled,
            *([TOKEN_LINK_PLUGIN] if TOKEN_LINK_PLUGIN not in disabled else []),
        ]
        return page_config
    kept = [name for name in page_config.get("disabledExtensions", []) if name not in replaced]
    page_config["disabledExtensions"] = [*kept, *COLLABORATION_LAB_EXTENSIONS]
    page_config["disableRTC"] = True
    return page_config


def replaced_plugins(labextensions: Mapping[str, dict]) -> frozenset[str]:
    """The plugins the collaboration lab extensions disable, from the installed extensions' metadata."""
    return frozenset(
        plugin
        for name in COLLABORATION_LAB_EXTENSIONS
        for plugin in labextensions.get(name, {}).get("jupyterlab", {}).get("disabledExtensions", [])
    )


def install_collaboration_page_config(web_app_settings: dict, environ: Mapping[str, str] = os.environ):
    """Wrap the `page_config_hook` JupyterLab calls (JupyterHub's, if any) with
    `make_collaboration_page_config`, for servers a ScienceLab spawner started; call it once every
    extension has set its own hook."""
    record = read_profile_record(environ)
    if record is None:
        return  # not started from a profile: jupyter-collaboration as installed
    collaborative = bool(record.get("collaborative"))
    replaced = replaced_plugins(get_federated_extensions(jupyter_path("labextensions")))
    previous: PageConfigHook | None = web_app_settings.get("page_config_hook")

    def hook(handler, page_config: dict) -> dict:
        if previous is not None:
            page_config = previous(handler, page_config)
        return make_collaboration_page_config(page_config, collaborative, replaced)

    web_app_settings["page_config_hook"] = hook
