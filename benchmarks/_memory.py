"""Peak memory of this process, for the benchmarks.

Read from ``VmHWM`` in /proc/self/status: unlike ``ru_maxrss`` it starts afresh at ``exec``, so a
child process started by a large parent reports its own peak, not the parent's.
"""

from __future__ import annotations

import resource


def peak_rss_gib() -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
