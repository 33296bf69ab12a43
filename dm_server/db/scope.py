"""Who may see what, decided once: restrict any select of a scoped model to a subtree.

Every query on accounts, terminals and anything hanging off a terminal (events,
registrations, operations, values, and later licences) goes through :func:`scoped`.
The admin sees everything, including unassigned terminals; everyone else sees the rows
whose owning account lies in their subtree (its ``path`` starts with theirs).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select

from dm_server.db.models.account import Account, Role
from dm_server.db.models.terminal import Terminal

S = TypeVar("S", bound=Select[Any])


def subtree_condition(caller: Account, path_column: Any) -> Any:
    """A SQL condition "``path_column`` lies in the caller's subtree"."""
    return path_column.startswith(caller.path, autoescape=True)


def scoped(statement: S, model: Any, caller: Account) -> S:
    """Restrict ``statement`` (a select involving ``model``) to rows ``caller`` may see.

    ``model`` is :class:`Account`, :class:`Terminal`, or any model with a ``terminal_id``
    column (or an ``account_id`` column) that belongs to one. Unknown models are refused, so
    a new model cannot silently skip the filter.
    """
    if caller.role is Role.ADMIN and caller.parent_id is None:
        return statement
    if model is Account:
        return statement.where(subtree_condition(caller, Account.path))
    if model is Terminal:
        return statement.where(Terminal.owner_id.in_(_subtree_account_ids(caller)))
    terminal_id = getattr(model, "terminal_id", None)
    if terminal_id is not None:
        visible = select(Terminal.id).where(Terminal.owner_id.in_(_subtree_account_ids(caller)))
        return statement.where(terminal_id.in_(visible))
    account_id = getattr(model, "account_id", None)
    if account_id is not None:
        return statement.where(account_id.in_(_subtree_account_ids(caller)))
    raise TypeError(f"{model!r} has no terminal_id or account_id: say how to scope it")


def _subtree_account_ids(caller: Account) -> Select[Any]:
    return select(Account.id).where(subtree_condition(caller, Account.path))
