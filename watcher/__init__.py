"""watcher: tells you when a government publication stops, shrinks or disappears."""

__version__ = "0.1.0"
