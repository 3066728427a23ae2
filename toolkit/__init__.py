"""Healthcare email campaigns as code."""

__version__ = "0.1.0"
MAJOR_VERSION = __version__.split(".")[0]
