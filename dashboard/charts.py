"""Fleet state over time as an inline SVG (no chart library): counts per state at each
hour, reconstructed backwards from the current counts and the recorded state changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from dm_server.db.models.terminal import TerminalStateChange, TradingState

WIDTH = 600
HEIGHT = 160
MARGIN = 24


@dataclass(frozen=True)
class Series:
    state: str
    points: str
    last: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    series: list[Series]
    maximum: int
    start: datetime
    end: datetime


def fleet_state_chart(
    counts: Mapping[str, int],
    history: Sequence[TerminalStateChange],
    since: datetime,
    now: datetime,
    buckets: int,
) -> Chart:
    """Walk back from ``counts`` (now) undoing each change, sampling at bucket edges."""
    current = {state.value: int(counts.get(state.value, 0)) for state in TradingState}
    step = (now - since) / buckets
    edges = [now - step * i for i in range(buckets + 1)]  # newest first
    changes = sorted(history, key=lambda change: change.at, reverse=True)
    samples: list[dict[str, int]] = []
    index = 0
    for edge in edges:
        while index < len(changes) and changes[index].at > edge:
            change = changes[index]
            current[TradingState(change.state).value] -= 1
            if change.previous is not None:
                current[TradingState(change.previous).value] += 1
            index += 1
        samples.append({k: max(0, v) for k, v in current.items()})
    samples.reverse()
    maximum = max([1, *(v for sample in samples for v in sample.values())])
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def xy(i: int, value: int) -> str:
        x = MARGIN + plot_w * i / max(1, buckets)
        y = MARGIN + plot_h * (1 - value / maximum)
        return f"{x:.1f},{y:.1f}"

    series = [
        Series(
            state.value,
            " ".join(xy(i, sample[state.value]) for i, sample in enumerate(samples)),
            samples[-1][state.value],
        )
        for state in TradingState
    ]
    return Chart(WIDTH, HEIGHT, series, maximum, since, now)

