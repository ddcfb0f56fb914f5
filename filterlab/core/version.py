"""filterlab's version, in the base layer so that run metadata can record it without importing the API."""

__version__ = "0.1.0"
