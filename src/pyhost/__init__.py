"""pyhost: a private Python package index on your own server."""

__version__ = "0.1.0"
