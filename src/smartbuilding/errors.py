"""The project's exception hierarchy.

Foreign errors (Zenoh's ``ZError``, ``sqlite3.Error``, ``OSError`` from files) are caught
at the boundary where they happen and re-raised as one of these, with the original
chained, so callers handle one family of exceptions.
"""

from __future__ import annotations


class SmartBuildingError(Exception):
    """Base of every error this package raises on purpose."""


class InvalidKeyError(SmartBuildingError, ValueError):
    """A key or a name inside a key is not part of the key space."""


class InvalidReadingError(SmartBuildingError, ValueError):
    """A reading payload that does not follow the reading schema.

    ``reason`` is a short fixed word (``not_json``, ``schema``, ``value``, ...) that
    storage uses to count rejections.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidQueryError(SmartBuildingError, ValueError):
    """A selector parameter of a query (time range, limit) is malformed."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class ConfigError(SmartBuildingError):
    """A configuration file or setting that cannot be used; the process exits with 2."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        parts = [p for p in (source, key) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.source = source
        self.key = key


class ConnectionFailedError(SmartBuildingError):
    """No Zenoh session could be opened to any of the configured endpoints."""


class ServiceUnavailableError(SmartBuildingError):
    """A service did not answer a query within its deadline."""


class StorageError(SmartBuildingError):
    """The storage backend failed to open, write or read its database."""


class DataSetError(SmartBuildingError):
    """A recorded building's files cannot be read."""
