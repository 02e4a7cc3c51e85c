"""A profile file that the hub re-reads when it changes.

The file is checked with `os.stat` on every use (a form render, a spawn): cheap, and the hub never
needs a restart. A broken edit keeps the last good profiles and logs why once per edit; a file that
was never good raises, so the hub refuses to start with it.
"""

import logging
import os
from pathlib import Path

from .profile_config import ProfileConfig, ProfileConfigError, load_profiles_yaml


class ProfileFile:
    """The profiles of one YAML file, reloaded when its modification time, size or inode change."""

    def __init__(self, path: str | os.PathLike, log: logging.Logger):
        self.path = Path(path)
        self.log = log
        self._config: ProfileConfig | None = None
        self._stamp: tuple[int, int, int] | None = None

    def current(self) -> ProfileConfig:
        """The profiles as the file says now, else the last good ones; raises if never good."""
        try:
            stat = self.path.stat()
        except OSError as error:
            return self._keep_last_good(f"{self.path}: cannot be read: {error.strerror}", None)
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp == self._stamp and self._config is not None:
            return self._config
        try:
            config = load_profiles_yaml(self.path.read_text(encoding="utf-8"), str(self.path))
        except (ProfileConfigError, OSError, UnicodeDecodeError) as error:
            return self._keep_last_good(str(error), stamp)
        if self._config is not None:
            self.log.info(
                "ScienceLab profiles reloaded from %s: %s", self.path, ", ".join(p.slug for p in config.profiles)
            )
        self._config, self._stamp = config, stamp
        return config

    def _keep_last_good(self, problem: str, stamp) -> ProfileConfig:
        if self._config is None:
            raise ProfileConfigError(problem)
        if stamp != self._stamp:
            self.log.error("ScienceLab profiles NOT reloaded, keeping the last good ones: %s", problem)
            self._stamp = stamp
        return self._config


_files: dict[Path, ProfileFile] = {}


def profile_file(path: str | os.PathLike, log: logging.Logger) -> ProfileFile:
    """The one `ProfileFile` of this process for `path`, shared by all spawners.

    The path is kept as given, symbolic links unresolved: a Kubernetes ConfigMap volume replaces a
    file by pointing its `..data` link at a new folder and deleting the old one, so a resolved path
    would go on naming the deleted file.
    """
    key = Path(os.path.abspath(path))
    if key not in _files:
        _files[key] = ProfileFile(key, log)
    return _files[key]
