"""Every model module in this package, imported so ``Base.metadata`` knows all tables.

One module per aggregate; a new module here (``licence.py``, ``audit.py``) is picked up
without editing this file.
"""

from __future__ import annotations

import importlib
import pkgutil

from dm_server.db.models.account import Account, Role
from dm_server.db.models.event import Event
from dm_server.db.models.observation import Observation
from dm_server.db.models.operation import OperationStatus, QueuedOperation
from dm_server.db.models.registration import Registration
from dm_server.db.models.terminal import SecurityMode, Terminal, TerminalStateChange, TradingState
from dm_server.db.models.value import ResourceValue

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "Account",
    "Event",
    "Observation",
    "OperationStatus",
    "QueuedOperation",
    "Registration",
    "ResourceValue",
    "Role",
    "SecurityMode",
    "Terminal",
    "TerminalStateChange",
    "TradingState",
]
