"""The one exception type for problems a user can cause with their inputs."""

from __future__ import annotations

from pathlib import Path


class FusionError(Exception):
    """Bad input a user can fix: a bad path, a corrupt file, a missing sensor, a bad config.

    `path` names the offending file (or None) and `reason` says what is wrong with it; the
    CLI prints `str(err)` on one line and exits non-zero.
    """

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class DataError(FusionError):
    """A dataroot, table or sensor file is missing or corrupt."""


class ConfigError(FusionError):
    """A config file has an unknown key, a wrong type or a bad value."""
