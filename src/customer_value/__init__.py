"""customer_value: what each customer is worth from now on, net of what it costs to serve."""

import os as _os

# LightGBM's OpenMP threads spin while waiting by default; on a 2-core machine shared with
# anything else (pytest-xdist workers, DuckDB) that makes a 3 s fit take a minute. Passive
# waiting costs nothing when the machine is idle. Only a default: an explicit setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
