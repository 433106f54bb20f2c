"""Which alerts to ring: each alert episode once, however many passes see it open.

An alert is identified by its run, its kind and the run attempt it belongs to (`resumes`), never
by the time of the run's last event: a slowdown stays one alert for as long as the run stays
slow. It rings when it opens, and again only after it was closed for `CLEAR_S` seconds and came
back, or in a new attempt of the run. An alert that flickers (open, closed, open within a few
passes) stays one episode.

One failure seen twice rings once: the traceback a NaN loss or an out-of-memory ends the run
with is the same failure as that alert (`FOLLOWS`).

The book is plain data, so the watcher process keeps it across restarts (`to_json`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tuneterm.health.alerts import Alert

CLEAR_S = 60.0  # an alert closed for this long has ended; when it opens again, it rings again
# An alert of the key's kind that opens while one of the value's kinds is open (or rang) in the
# same attempt is the same failure, told already.
FOLLOWS: dict[str, tuple[str, ...]] = {"traceback": ("nan_loss", "oom")}


@dataclass
class AlertBook:
    """Remembers the open alert episodes of every run; `ring` says which alerts are new."""

    clear_s: float = CLEAR_S
    # episode key -> None while open, else the first pass that saw it closed
    episodes: dict[str, float | None] = field(default_factory=dict)
    told: set[str] = field(default_factory=set)  # ends of attempts already told

    @staticmethod
    def key(run_id: str, attempt: int, kind: str) -> str:
        return f"{run_id}#{attempt}:{kind}"

    def ring(self, run_id: str, attempt: int, alerts: Iterable[Alert], now: float) -> list[Alert]:
        """The alerts of one run's pass that start an episode (to be rung); updates the book.
        `alerts` are all the run's open alerts in this pass: those missing are closed."""
        by_kind: dict[str, Alert] = {}
        for a in alerts:
            by_kind.setdefault(a.kind, a)
        prefix = f"{run_id}#{attempt}:"
        for key, gone in self.episodes.items():
            if key.startswith(prefix) and key[len(prefix) :] not in by_kind and gone is None:
                self.episodes[key] = now
        out: list[Alert] = []
        # The causes first, so a traceback in the same pass as its NaN is known to follow it.
        for kind in sorted(by_kind, key=lambda k: k in FOLLOWS):
            key = self.key(run_id, attempt, kind)
            gone = self.episodes.get(key, now - self.clear_s)  # never seen: as if long gone
            fresh = gone is not None and now - gone >= self.clear_s
            if fresh and not self._follows(run_id, attempt, kind):
                out.append(by_kind[kind])
            self.episodes[key] = None
        return out

    def _follows(self, run_id: str, attempt: int, kind: str) -> bool:
        return any(self.key(run_id, attempt, c) in self.episodes for c in FOLLOWS.get(kind, ()))

    def ended(self, run_id: str, attempt: int) -> bool:
        """Whether this attempt's end is new (to be told); marks it told."""
        key = f"{run_id}#{attempt}:ended"
        if key in self.told:
            return False
        self.told.add(key)
        return True

    def forget(self, keep: set[str]) -> None:
        """Drop the episodes of runs not in `keep` (deleted runs)."""
        self.episodes = {k: e for k, e in self.episodes.items() if k.split("#")[0] in keep}
        self.told = {k for k in self.told if k.split("#")[0] in keep}

    def to_json(self) -> dict[str, Any]:
        return {
            "episodes": dict(sorted(self.episodes.items())),
            "told": sorted(self.told),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AlertBook:
        book = cls()
        for key, gone in (raw.get("episodes") or {}).items():
            if gone is None or isinstance(gone, int | float):
                book.episodes[str(key)] = gone  # else damaged: at worst one alert rings again
        book.told = {str(k) for k in raw.get("told") or []}
        return book
