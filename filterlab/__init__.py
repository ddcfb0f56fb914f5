"""filterlab: watch a CNN's random filters turn into meaningful shapes while it trains."""

__version__ = "0.1.0"
