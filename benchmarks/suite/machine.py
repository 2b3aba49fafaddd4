"""What the machine is doing, read without importing streamrnn (so that a script can time
another library first)."""

import os


def busy_seconds():
    """CPU seconds the whole machine has been busy since boot (None without /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except OSError:
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait
