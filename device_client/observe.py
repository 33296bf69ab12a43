"""Write-Attributes and Observe on the agent (TS Core §5.1.2, §6.4.1).

Attributes are kept per path; an observation uses the attributes of its own path, falling
back to those of its instance and object, and to the server's default periods (object 1).
Notifications go out on a change (respecting ``pmin`` and, for a numeric resource, ``gt``,
``lt`` and ``st``) and at the latest every ``pmax`` seconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from device_client.errors import BadRequest, MethodNotAllowed
from lwm2m_core.model import ResourceModel, ResourceType
from lwm2m_core.path import LwM2mPath

#: Attributes a server may set with Write-Attributes on the agent.
NOTIFICATION_ATTRIBUTES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax")
_INTEGER_ATTRIBUTES = frozenset({"pmin", "pmax", "epmin", "epmax"})
#: gt / lt / st apply to numbers; Time counts as one (seconds since the epoch).
_NUMERIC_TYPES = frozenset({ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER,
                            ResourceType.FLOAT, ResourceType.TIME})


def parse_attribute_query(query: tuple[str, ...]) -> dict[str, float | int | None]:
    """``("pmin=10", "gt")`` -> ``{"pmin": 10, "gt": None}`` (None removes the attribute)."""
    out: dict[str, float | int | None] = {}
    for item in query:
        name, sep, raw = item.partition("=")
        if name not in NOTIFICATION_ATTRIBUTES:
            raise BadRequest(f"unknown attribute {name!r}; allowed: "
                             f"{', '.join(NOTIFICATION_ATTRIBUTES)}")
        if not sep:
            out[name] = None
            continue
        try:
            value: float | int = int(raw) if name in _INTEGER_ATTRIBUTES else float(raw)
        except ValueError:
            raise BadRequest(f"attribute {name}={raw!r} is not a number") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(f"attribute {name} must be finite")
        if name in _INTEGER_ATTRIBUTES and value < 0:
            raise BadRequest(f"attribute {name} must not be negative")
        if name == "st" and value < 0:
            raise BadRequest("attribute st must not be negative")
        out[name] = value
    return out


class AttributeStore:
    """Notification attributes per path, as set by Write-Attributes."""

    def __init__(self) -> None:
        self._by_path: dict[LwM2mPath, dict[str, float | int]] = {}

    def get(self, path: LwM2mPath) -> dict[str, float | int]:
        return dict(self._by_path.get(path, {}))

    def write(
        self, path: LwM2mPath, changes: dict[str, float | int | None],
        resource: ResourceModel | None,
    ) -> None:
        """Apply ``changes`` at ``path`` after checking them together; nothing changes on error."""
        if path.depth == 0:
            raise MethodNotAllowed("Write-Attributes needs an object, instance or resource")
        merged = self.get(path)
        for name, value in changes.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        numeric = {"gt", "lt", "st"} & set(merged)
        if numeric:
            if resource is None or path.depth < 3:
                raise BadRequest("gt, lt and st apply to a resource only")
            if resource.type not in _NUMERIC_TYPES or (resource.multiple and path.depth == 3):
                raise BadRequest(f"gt, lt and st need a single numeric resource, "
                                 f"not {resource.name}")
        if "pmin" in merged and "pmax" in merged and merged["pmax"] < merged["pmin"]:
            raise BadRequest("pmax must not be smaller than pmin")
        if "lt" in merged and "gt" in merged:
            step = merged.get("st", 0)
            if not merged["lt"] + 2 * step < merged["gt"]:
                raise BadRequest("need lt + 2*st < gt")
        if merged:
            self._by_path[path] = merged
        else:
            self._by_path.pop(path, None)

    def effective(self, path: LwM2mPath) -> dict[str, float | int]:
        """Attributes for ``path``: object, then instance, then resource level win in turn."""
        out: dict[str, float | int] = {}
        for depth in range(1, path.depth + 1):
            out.update(self._by_path.get(LwM2mPath(*path.ids[:depth]), {}))
        return out

    def clear(self) -> None:
        self._by_path.clear()


@dataclass
class Observation:
    """One server observation: when to notify, and what was last sent."""

    path: LwM2mPath
    trigger: Callable[[], None]
    read_number: Callable[[], float | None]
    attributes: Callable[[], dict[str, float | int]]
    last_sent: float = 0.0
    last_value: float | None = None
    pending: asyncio.TimerHandle | None = None
    pmax_timer: asyncio.TimerHandle | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def cancel_timers(self) -> None:
        for handle in (self.pending, self.pmax_timer):
            if handle is not None:
                handle.cancel()
        self.pending = self.pmax_timer = None


class ObservationManager:
    """Decides when each observation notifies; the CoAP layer does the sending."""

    def __init__(self, attributes: AttributeStore, default_periods: Callable[[], tuple[int, int]]):
        self.attributes = attributes
        self.default_periods = default_periods
        self.observations: list[Observation] = []

    def _periods(self, obs: Observation) -> tuple[float, float]:
        attrs = obs.attributes()
        default_pmin, default_pmax = self.default_periods()
        return float(attrs.get("pmin", default_pmin)), float(attrs.get("pmax", default_pmax))

    def add(self, obs: Observation) -> None:
        obs.last_sent = time.monotonic()
        obs.last_value = obs.read_number()
        self.observations.append(obs)
        self._arm_pmax(obs)

    def remove(self, obs: Observation) -> None:
        obs.cancel_timers()
        if obs in self.observations:
            self.observations.remove(obs)

    def close(self) -> None:
        for obs in list(self.observations):
            self.remove(obs)

    def _arm_pmax(self, obs: Observation) -> None:
        _, pmax = self._periods(obs)
        if obs.pmax_timer is not None:
            obs.pmax_timer.cancel()
            obs.pmax_timer = None
        if pmax > 0:
            obs.pmax_timer = asyncio.get_running_loop().call_later(pmax, self._send, obs)

    def _send(self, obs: Observation) -> None:
        if obs not in self.observations:
            return
        obs.pending = None
        obs.last_sent = time.monotonic()
        obs.last_value = obs.read_number()
        self._arm_pmax(obs)
        obs.trigger()

    def _crosses(self, obs: Observation) -> bool:
        """Whether a numeric change passes gt / lt / st (True when none is set)."""
        attrs = obs.attributes()
        if not {"gt", "lt", "st"} & set(attrs):
            return True
        value = obs.read_number()
        last = obs.last_value
        if value is None or last is None:
            return True
        for name in ("gt", "lt"):
            if name in attrs and (value > attrs[name]) != (last > attrs[name]):
                return True
        return "st" in attrs and abs(value - last) >= attrs["st"]

    def changed(self, path: LwM2mPath) -> None:
        """Called for every change in the tree; schedules notifications that are due."""
        for obs in list(self.observations):
            if not (path.starts_with(obs.path) or obs.path.starts_with(path)):
                continue
            if obs.pending is not None or not self._crosses(obs):
                continue
            pmin, _ = self._periods(obs)
            wait = max(0.0, obs.last_sent + pmin - time.monotonic())
            obs.pending = asyncio.get_running_loop().call_later(wait, self._send, obs)
