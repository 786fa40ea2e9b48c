"""The failures a user can act on. Each names what is wrong and, where it helps, what to do.

The CLI prints any :class:`CustomerValueError` as one line and exits non-zero (``--debug`` shows
the traceback); anything else is a bug and says where to report it. Library callers catch the
base class or one of its kinds.
"""

from __future__ import annotations


class CustomerValueError(Exception):
    """A failure the user can act on (bad input, config, model reference, environment)."""

    exit_code = 1


class InputError(CustomerValueError, ValueError):
    """Input files or tables that break the contract, or a request the data cannot answer."""


class ConfigError(CustomerValueError, ValueError):
    """A config file or option that cannot be read or does not validate; names the keys."""

    exit_code = 2


class CannotFitError(CustomerValueError, RuntimeError):
    """A model part that the data cannot support (e.g. nobody ever bought twice)."""


class ModelNotFoundError(CustomerValueError, LookupError):
    """A model URI, version, alias or directory that does not resolve."""


class TrackingUnavailableError(CustomerValueError, ConnectionError):
    """The MLflow tracking server or store cannot be reached."""


class OutputError(CustomerValueError, OSError):
    """An output location that cannot be written (a directory, under a file, read-only, full)."""
