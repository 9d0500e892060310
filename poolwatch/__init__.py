"""poolwatch: monitoring, alerting and fault handling for GPU/NPU training pools.

This package holds what every part shares: the metric catalog, configuration loading and the CLI.
"""

__version__ = "0.1.0"
