"""Run health: alerts raised from a run's own events and process state, torch- and textual-free.

`RunHealth` follows one run's events incrementally (`feed`) and keeps what the detectors
need; `detectors.py` holds the detectors, in a registry that says which alerts each raises;
`watch.py` checks every run of a store in one pass and notifies each alert once.
"""

from tuneterm.health.alerts import Alert
from tuneterm.health.state import RunHealth

__all__ = ["Alert", "RunHealth"]
