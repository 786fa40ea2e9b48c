"""lifetimes, the reference implementation the probabilistic models are checked against.

Imported quietly: lifetimes warns at import time (its use of deprecated pandas and NumPy APIs)."""

from __future__ import annotations

import warnings


def lifetimes():
    """The ``lifetimes`` package with its datasets loaded, imported without its warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lifetimes
        import lifetimes.datasets

    return lifetimes
