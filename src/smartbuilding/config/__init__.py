"""Configuration: JSON5 files, environment variables and options, mapped to Zenoh's settings."""

from smartbuilding.config.settings import AdminEndpoint, Overrides, Settings, load_settings, read_json5

__all__ = ["AdminEndpoint", "Overrides", "Settings", "load_settings", "read_json5"]
