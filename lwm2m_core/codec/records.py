"""Timestamped, multi-path values: what Send (``/dp``), Read-Composite and timestamped
notifications carry (TS Core §6.4.5, §6.7, §7.4.4).

A :class:`Record` is one SenML record resolved against the object model: the full path of
a resource or resource instance, its typed value, and its time if the payload gave one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from lwm2m_core.codec._tree import TreeBuilder, check_leaf, check_node, flatten
from lwm2m_core.errors import CodecError
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.node import LwM2mNode, Value
from lwm2m_core.path import LwM2mPath


@dataclass(frozen=True, slots=True)
class Record:
    """One value at one resource (``/3/0/9``) or resource instance (``/3/0/6/1``) path."""

    path: LwM2mPath
    value: Value
    time: datetime | None = None


def check_records(records: Iterable[Record], model: ObjectModelRepository) -> list[Record]:
    """Check every record against the model; returns them with values normalised."""
    checked = []
    for record in records:
        if not isinstance(record, Record):
            raise CodecError(f"expected a Record, got {type(record).__name__}")
        if record.path.depth < 3:
            raise CodecError("a record needs a resource or resource instance path", record.path)
        if record.time is not None and (
            not isinstance(record.time, datetime) or record.time.tzinfo is None
        ):
            raise CodecError("record time must be a timezone-aware datetime", record.path)
        value = check_leaf(record.path, record.value, model)
        checked.append(Record(record.path, value, record.time))
    return checked


def node_to_records(
    node: LwM2mNode, path: LwM2mPath, model: ObjectModelRepository, time: datetime | None = None
) -> list[Record]:
    """Every leaf of ``node`` (sitting at ``path``) as a record, all with the same time."""
    check_node(node, path, model)
    return [Record(leaf_path, value, time) for leaf_path, value in flatten(node, path)]


def records_to_node(
    records: Iterable[Record], path: LwM2mPath, model: ObjectModelRepository
) -> LwM2mNode:
    """The node at ``path`` built from records that all lie under it (times are dropped)."""
    builder = TreeBuilder(path, model)
    for record in records:
        builder.add(record.path, record.value)
    return builder.build()


def records_by_instance(
    records: Iterable[Record], model: ObjectModelRepository
) -> dict[LwM2mPath, LwM2mNode]:
    """Group records per object instance (``/3/0``) and build one instance node each.

    Handy for a Send or a composite answer that touches several objects. If one path is
    given twice (a Send with history), the latest time wins; records without time count as
    older than any timestamped one, and among equals the later record in the list wins.
    """
    latest: dict[LwM2mPath, Record] = {}
    for record in records:
        previous = latest.get(record.path)
        if previous is None or _not_older(record, previous):
            latest[record.path] = record
    builders: dict[LwM2mPath, TreeBuilder] = {}
    for record in latest.values():
        instance_path = LwM2mPath(record.path.object_id, record.path.object_instance_id)
        builder = builders.get(instance_path)
        if builder is None:
            builder = builders[instance_path] = TreeBuilder(instance_path, model)
        builder.add(record.path, record.value)
    return {instance_path: builders[instance_path].build() for instance_path in sorted(builders)}


def _not_older(record: Record, previous: Record) -> bool:
    if record.time is None:
        return previous.time is None
    return previous.time is None or record.time >= previous.time
