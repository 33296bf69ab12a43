"""The agent's object tree: object and instance enablers checked against the object model.

An :class:`InstanceEnabler` holds or computes the resources of one object instance and
implements Write and Execute hooks; an :class:`ObjectEnabler` groups the instances of one
object and creates or deletes them; the :class:`ObjectTree` answers LwM2M operations by path,
checking every request against :mod:`lwm2m_core.model` first. Writes are all-or-nothing: all
values are checked (type, range, the instance's own ``check_write``) before any is applied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from device_client.errors import BadRequest, MethodNotAllowed, NotFound
from lwm2m_core.errors import ModelError
from lwm2m_core.model import ObjectModel, ObjectModelRepository, ResourceModel
from lwm2m_core.node import (
    LwM2mMultipleResource,
    LwM2mNode,
    LwM2mObject,
    LwM2mObjectInstance,
    LwM2mResourceInstance,
    LwM2mSingleResource,
    Value,
    check_in_range,
    check_value,
)
from lwm2m_core.path import LwM2mPath

#: What a resource holds: one value, or {resource instance id: value} for a multiple one.
ResourceValue = Value | dict[int, Value]
ChangeListener = Callable[[LwM2mPath], None]


class InstanceEnabler:
    """One object instance. Static values live in :attr:`values`; override :meth:`read` for
    values computed on demand, :meth:`check_write` to refuse values, :meth:`execute` for
    executable resources (listed in :attr:`executable`)."""

    executable: frozenset[int] = frozenset()

    def __init__(self, instance_id: int = 0, values: dict[int, ResourceValue] | None = None):
        self.id = instance_id
        self.values: dict[int, ResourceValue] = dict(values or {})
        self.object_id: int | None = None
        self._listener: ChangeListener | None = None

    # -- what the tree calls ------------------------------------------------------------
    def resource_ids(self) -> list[int]:
        """Ids of the resources this instance has (readable, writable or executable)."""
        return sorted(set(self.values) | set(self.dynamic_ids()) | set(self.executable))

    def dynamic_ids(self) -> Iterable[int]:
        """Resources computed by :meth:`read` rather than stored in :attr:`values`."""
        return ()

    def read(self, resource_id: int) -> ResourceValue:
        try:
            return self.values[resource_id]
        except KeyError:
            raise NotFound(f"resource {resource_id} is not present") from None

    def check_write(self, resource_id: int, value: ResourceValue) -> None:
        """Raise BadRequest to refuse a value; called for every value before any is applied."""

    def write(self, resource_id: int, value: ResourceValue) -> None:
        self.values[resource_id] = value
        self.changed(resource_id)

    async def execute(self, resource_id: int, arguments: str) -> None:
        raise MethodNotAllowed(f"resource {resource_id} cannot be executed")

    def created(self) -> None:
        """Called once after a server Create filled :attr:`values`."""

    # -- for implementations ------------------------------------------------------------
    def bind(self, object_id: int, listener: ChangeListener | None) -> None:
        self.object_id = object_id
        self._listener = listener

    def changed(self, *resource_ids: int) -> None:
        """Tell observers that these resources (or, with none given, the instance) changed."""
        if self._listener is None or self.object_id is None:
            return
        if not resource_ids:
            self._listener(LwM2mPath(self.object_id, self.id))
        for rid in resource_ids:
            self._listener(LwM2mPath(self.object_id, self.id, rid))

    def set(self, resource_id: int, value: ResourceValue) -> None:
        """Set a value from the terminal side; notifies observers only if it changed."""
        if self.values.get(resource_id) != value:
            self.values[resource_id] = value
            self.changed(resource_id)


InstanceFactory = Callable[[int], InstanceEnabler]


class ObjectEnabler:
    """The instances of one object. Pass ``factory`` to allow Create by the server."""

    def __init__(
        self,
        model: ObjectModel,
        instances: Iterable[InstanceEnabler] = (),
        factory: InstanceFactory | None = None,
        on_delete: Callable[[InstanceEnabler], None] | None = None,
        protected: frozenset[int] = frozenset(),
    ) -> None:
        self.model = model
        self.protected = protected
        self.instances: dict[int, InstanceEnabler] = {}
        self.factory = factory
        self.on_delete = on_delete
        self._listener: ChangeListener | None = None
        for instance in instances:
            self.add(instance)

    @property
    def id(self) -> int:
        return self.model.id

    def bind(self, listener: ChangeListener) -> None:
        self._listener = listener
        for instance in self.instances.values():
            instance.bind(self.id, listener)

    def add(self, instance: InstanceEnabler) -> InstanceEnabler:
        if not self.model.multiple and self.instances and instance.id not in self.instances:
            raise ModelError(f"object {self.id} is single-instance")
        instance.bind(self.id, self._listener)
        self.instances[instance.id] = instance
        if self._listener:
            self._listener(LwM2mPath(self.id))
        return instance

    def remove(self, instance_id: int) -> None:
        instance = self.instances.pop(instance_id)
        if self.on_delete:
            self.on_delete(instance)
        if self._listener:
            self._listener(LwM2mPath(self.id))

    def free_instance_id(self) -> int:
        taken = set(self.instances)
        return next(i for i in range(len(taken) + 1) if i not in taken)


class ObjectTree:
    """All objects of the agent, answering LwM2M operations by path."""

    def __init__(self, models: ObjectModelRepository) -> None:
        self.models = models
        self.objects: dict[int, ObjectEnabler] = {}
        self.listeners: list[ChangeListener] = []

    def add(self, enabler: ObjectEnabler) -> ObjectEnabler:
        self.objects[enabler.id] = enabler
        enabler.bind(self._changed)
        return enabler

    def _changed(self, path: LwM2mPath) -> None:
        for listener in list(self.listeners):
            listener(path)

    # -- lookup ---------------------------------------------------------------------------
    def object(self, path: LwM2mPath) -> ObjectEnabler:
        enabler = self.objects.get(path.object_id) if path.object_id is not None else None
        if enabler is None:
            raise NotFound(f"object {path.object_id} is not implemented")
        return enabler

    def instance(self, path: LwM2mPath) -> InstanceEnabler:
        enabler = self.object(path)
        instance = enabler.instances.get(path.object_instance_id)  # type: ignore[arg-type]
        if instance is None:
            raise NotFound(f"{LwM2mPath(path.object_id, path.object_instance_id)} does not exist")
        return instance

    def resource_model(self, path: LwM2mPath) -> ResourceModel:
        try:
            return self.models.get_resource(path)
        except ModelError as exc:
            raise NotFound(exc.message) from None

    # -- Read -----------------------------------------------------------------------------
    def read(self, path: LwM2mPath) -> LwM2mNode:
        """The node at ``path``; object and instance reads include readable resources only."""
        if path.is_root:
            raise MethodNotAllowed("Read of the root is not allowed")
        enabler = self.object(path)
        if path.is_object:
            return LwM2mObject(
                enabler.id,
                {i.id: self._read_instance(enabler, i) for i in enabler.instances.values()},
            )
        instance = self.instance(path)
        if path.is_object_instance:
            return self._read_instance(enabler, instance)
        model = self.resource_model(path)
        if not model.operations.readable:
            raise MethodNotAllowed(f"{path} ({model.name}) is not readable")
        if path.resource_id not in instance.resource_ids():
            raise NotFound(f"{path} ({model.name}) is not present")
        node = self._resource_node(model, instance.read(model.id), path)
        if path.is_resource_instance:
            assert isinstance(node, LwM2mMultipleResource)
            if path.resource_instance_id not in node.instances:
                raise NotFound(f"{path} does not exist")
            return LwM2mResourceInstance(
                path.resource_instance_id,  # type: ignore[arg-type]
                model.type,
                node.instances[path.resource_instance_id],  # type: ignore[index]
            )
        return node

    def _read_instance(
        self, enabler: ObjectEnabler, instance: InstanceEnabler
    ) -> LwM2mObjectInstance:
        resources = {}
        for rid in instance.resource_ids():
            model = enabler.model.resources.get(rid)
            if model is None or not model.operations.readable:
                continue
            try:
                value = instance.read(rid)
            except NotFound:
                continue
            path = LwM2mPath(enabler.id, instance.id, rid)
            resources[rid] = self._resource_node(model, value, path)
        return LwM2mObjectInstance(instance.id, resources)

    @staticmethod
    def _resource_node(
        model: ResourceModel, value: ResourceValue, path: LwM2mPath
    ) -> LwM2mSingleResource | LwM2mMultipleResource:
        if model.multiple:
            if not isinstance(value, dict):
                raise ModelError("a multiple resource must hold a dict", path)
            return LwM2mMultipleResource(model.id, model.type, dict(value))
        return LwM2mSingleResource(model.id, model.type, value)  # type: ignore[arg-type]

    # -- Write ----------------------------------------------------------------------------
    def write(self, path: LwM2mPath, node: LwM2mNode, replace: bool, server: bool = True) -> None:
        """Write ``node`` at ``path`` (an instance or a resource). Nothing changes on error."""
        if path.depth < 2:
            raise MethodNotAllowed("Write needs an object instance or resource path")
        instance = self.instance(path)
        updates = self._collect_updates(path, node, instance, replace, server)
        self._apply(instance, updates)

    def _collect_updates(
        self,
        path: LwM2mPath,
        node: LwM2mNode,
        instance: InstanceEnabler,
        replace: bool,
        server: bool,
    ) -> dict[int, ResourceValue]:
        if path.is_object_instance:
            if not isinstance(node, LwM2mObjectInstance):
                raise BadRequest("payload must be an object instance for an instance path")
            resources = list(node.resources.values())
        elif path.is_resource:
            if not isinstance(node, LwM2mSingleResource | LwM2mMultipleResource):
                raise BadRequest("payload must be a resource for a resource path")
            if node.id != path.resource_id:
                raise BadRequest(f"payload is for resource {node.id}, not {path.resource_id}")
            resources = [node]
        elif path.is_resource_instance:
            if not isinstance(node, LwM2mResourceInstance):
                raise BadRequest("payload must be a resource instance")
            present = path.resource_id in instance.resource_ids()
            current = self.read(path.parent()) if present else None
            existing = dict(current.instances) if isinstance(current, LwM2mMultipleResource) else {}
            existing[node.id] = node.value
            model = self.resource_model(path.parent())
            resources = [LwM2mMultipleResource(model.id, model.type, existing)]
        else:
            raise MethodNotAllowed("Write needs an object instance or resource path")
        updates: dict[int, ResourceValue] = {}
        object_id = path.object_id
        for resource in resources:
            rpath = LwM2mPath(object_id, instance.id, resource.id)
            model = self.resource_model(rpath)
            if server and not model.operations.writable:
                raise MethodNotAllowed(f"{rpath} ({model.name}) is not writable")
            if model.id not in instance.resource_ids():
                raise NotFound(f"{rpath} ({model.name}) is not present on this terminal")
            value = self._checked_value(model, resource, rpath, instance, replace)
            instance.check_write(model.id, value)
            updates[model.id] = value
        return updates

    def _checked_value(
        self,
        model: ResourceModel,
        resource: Any,
        path: LwM2mPath,
        instance: InstanceEnabler,
        replace: bool,
    ) -> ResourceValue:
        try:
            if model.multiple:
                if not isinstance(resource, LwM2mMultipleResource):
                    raise BadRequest(f"{path} ({model.name}) is a multiple resource")
                values = {}
                for rid, raw in resource.instances.items():
                    value = check_value(raw, model.type, path.child(rid))
                    check_in_range(value, model, path.child(rid))
                    values[rid] = value
                if not replace and path.resource_id in instance.resource_ids():
                    try:
                        current = instance.read(model.id)
                    except NotFound:
                        current = {}
                    merged = dict(current) if isinstance(current, dict) else {}
                    merged.update(values)
                    return merged
                return values
            if not isinstance(resource, LwM2mSingleResource):
                raise BadRequest(f"{path} ({model.name}) is a single resource")
            value = check_value(resource.value, model.type, path)
            check_in_range(value, model, path)
            return value
        except ModelError as exc:
            raise BadRequest(exc.message) from None

    @staticmethod
    def _apply(instance: InstanceEnabler, updates: dict[int, ResourceValue]) -> None:
        for rid, value in updates.items():
            instance.write(rid, value)

    # -- Execute --------------------------------------------------------------------------
    def execute(self, path: LwM2mPath, arguments: str) -> Awaitable[None]:
        if not path.is_resource:
            raise MethodNotAllowed("Execute needs a resource path")
        instance = self.instance(path)
        model = self.resource_model(path)
        if not model.operations.executable:
            raise MethodNotAllowed(f"{path} ({model.name}) is not executable")
        if model.id not in instance.executable:
            raise NotFound(f"{path} ({model.name}) is not implemented on this terminal")
        return instance.execute(model.id, arguments)

    # -- Create / Delete ------------------------------------------------------------------
    def check_create(self, path: LwM2mPath) -> ObjectEnabler:
        """The object a Create on ``path`` goes to, if it accepts Create at all."""
        if not path.is_object:
            raise MethodNotAllowed("Create needs an object path")
        enabler = self.object(path)
        if enabler.factory is None:
            raise MethodNotAllowed(f"object {enabler.id} does not accept Create")
        return enabler

    def create(self, path: LwM2mPath, node: LwM2mNode) -> int:
        """Create an instance under object ``path``; returns its id."""
        enabler = self.check_create(path)
        assert enabler.factory is not None
        if isinstance(node, LwM2mObject):
            if len(node.instances) != 1:
                raise BadRequest("Create takes exactly one instance")
            node = next(iter(node.instances.values()))
        if not isinstance(node, LwM2mObjectInstance):
            raise BadRequest("Create needs an object instance payload")
        instance_id = node.id if node.id is not None else enabler.free_instance_id()
        if instance_id in enabler.instances:
            raise BadRequest(f"instance {enabler.id}/{instance_id} already exists")
        if not enabler.model.multiple and enabler.instances:
            raise BadRequest(f"object {enabler.id} is single-instance and has its instance")
        instance = enabler.factory(instance_id)
        updates = {}
        for resource in node.resources.values():
            rpath = LwM2mPath(enabler.id, instance_id, resource.id)
            model = self.resource_model(rpath)
            value = self._checked_value(model, resource, rpath, instance, replace=True)
            instance.check_write(model.id, value)
            updates[model.id] = value
        missing = [
            r.name
            for r in enabler.model.resources.values()
            if r.mandatory and r.operations.writable and r.id not in updates
            and r.id not in instance.resource_ids()
        ]
        if missing:
            raise BadRequest(f"Create of {enabler.id} lacks mandatory {', '.join(missing)}")
        instance.values.update(updates)
        instance.created()
        enabler.add(instance)
        return instance_id

    def delete(self, path: LwM2mPath) -> None:
        if not path.is_object_instance:
            raise MethodNotAllowed("Delete needs an object instance path")
        enabler = self.object(path)
        self.instance(path)
        if enabler.factory is None or path.object_instance_id in enabler.protected:
            raise MethodNotAllowed(f"{path} cannot be deleted")
        enabler.remove(path.object_instance_id)  # type: ignore[arg-type]

    # -- Discover / registration ---------------------------------------------------------
    def instance_paths(self) -> list[LwM2mPath]:
        """What the Register payload lists: every object (with instances, each instance)."""
        paths = []
        for oid in sorted(self.objects):
            enabler = self.objects[oid]
            if not enabler.instances:
                paths.append(LwM2mPath(oid))
            paths.extend(LwM2mPath(oid, iid) for iid in sorted(enabler.instances))
        return paths

    def discover_paths(self, path: LwM2mPath) -> list[LwM2mPath]:
        """Paths a Discover on ``path`` lists (TS Core §5.4.2): the target and what is below."""
        enabler = self.object(path)
        if path.is_object:
            out = [path]
            for iid in sorted(enabler.instances):
                ipath = path.child(iid)
                out.append(ipath)
                out.extend(ipath.child(r) for r in enabler.instances[iid].resource_ids())
            return out
        instance = self.instance(path)
        if path.is_object_instance:
            return [path, *(path.child(r) for r in instance.resource_ids())]
        model = self.resource_model(path)
        if path.is_resource:
            if path.resource_id not in instance.resource_ids():
                raise NotFound(f"{path} is not present")
            out = [path]
            if model.multiple and model.operations.readable:
                value = instance.read(model.id)
                if isinstance(value, dict):
                    out.extend(path.child(ri) for ri in sorted(value))
            return out
        raise MethodNotAllowed("Discover is not defined on a resource instance")


def parse_execute_arguments(text: str) -> dict[int, str]:
    """Execute arguments (TS Core §5.4.5): ``0='a',1,2='b c'`` -> {0: 'a', 1: '', 2: 'b c'}."""
    out: dict[int, str] = {}
    i, n = 0, len(text)
    while i < n:
        j = i
        while j < n and text[j].isdigit():
            j += 1
        if j == i or j - i > 1:
            raise BadRequest(f"execute arguments: expected a digit 0-9 at offset {i}")
        number = int(text[i:j])
        value = ""
        if j < n and text[j] == "=":
            if j + 1 >= n or text[j + 1] != "'":
                raise BadRequest("execute arguments: a value must be in single quotes")
            end = text.find("'", j + 2)
            if end < 0:
                raise BadRequest("execute arguments: unterminated quote")
            value = text[j + 2:end]
            j = end + 1
        if number in out:
            raise BadRequest(f"execute arguments: argument {number} given twice")
        out[number] = value
        if j < n:
            if text[j] != ",":
                raise BadRequest(f"execute arguments: expected ',' at offset {j}")
            j += 1
            if j >= n:
                raise BadRequest("execute arguments: trailing ','")
        i = j
    return out
