"""Primary-key layout of a stored model, declared next to the model it belongs to."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableKey:
    partition: tuple[str, ...]
    clustering: tuple[tuple[str, str], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.partition + tuple(name for name, _ in self.clustering)
