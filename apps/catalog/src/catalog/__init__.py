"""Product Catalog REST API."""

__version__ = "0.1.0"
