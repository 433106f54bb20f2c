"""Run health: alerts raised from a run's own events and process state, torch- and textual-free.

`RunHealth` follows one run's events incrementally (`feed`) and says which alerts are open
(`alerts`); `detectors.py` holds one function per alert kind, in a registry; `watch.py` checks
every run of a store in one pass and notifies each alert once.
"""

from tuneterm.health.alerts import Alert, HealthSettings
from tuneterm.health.state import RunHealth

__all__ = ["Alert", "HealthSettings", "RunHealth"]
