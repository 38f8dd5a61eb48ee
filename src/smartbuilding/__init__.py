"""smartbuilding: a smart-building platform on Eclipse Zenoh."""

__version__ = "0.1.0"
