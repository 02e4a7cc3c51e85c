"""ScienceLab's Jupyter server extension and the prebuilt JupyterLab extension it ships."""

from ._version import __version__
from .app import SciencelabApp

__all__ = ["SciencelabApp", "__version__"]


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "@sciencelab/labextension"}]


def _jupyter_server_extension_points():
    return [{"module": "sciencelab", "app": SciencelabApp}]
