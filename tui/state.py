"""Plain state the app shares with its screens (no widgets here)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SyncStatus:
    """What the status line says about syncing: when, and which clusters do not answer."""

    synced_at: float | None = None
    unreachable: dict[str, str] = field(default_factory=dict)
    note: str = ""
    generation: int = 0  # bumps on every finished sync: screens reload on it
