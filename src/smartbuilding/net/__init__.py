"""Zenoh sessions and query helpers shared by every service."""
