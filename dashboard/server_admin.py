"""The admin's server page and the terminal's resource browser: object definitions
(list, validate, upload), settings without secrets, SQLite backup and restore."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import make_url

from dm_server.errors import N_, InvalidInput
from dm_server.server import UPLOADED_OBJECTS_DIR
from dm_server.settings import Settings
from lwm2m_core.errors import LwM2MError, PathError
from lwm2m_core.model import ObjectModelRepository, parse_object_definitions
from lwm2m_core.path import LwM2mPath

MAX_UPLOAD_BYTES = 1024 * 1024
MAX_BACKUP_BYTES = 2 * 1024 * 1024 * 1024
SQLITE_MAGIC = b"SQLite format 3\x00"
CHUNK = 64 * 1024
#: Settings never shown on a page, even to the admin.
SECRET_SETTINGS = {"admin_password", "token_secret"}
#: Tables a restored file must have to count as a PosFleet database.
REQUIRED_TABLES = {"alembic_version", "accounts", "terminals"}


def object_dirs(settings: Settings) -> list[Path]:
    uploaded = settings.data_dir / UPLOADED_OBJECTS_DIR
    return [*settings.object_dirs, *([uploaded] if uploaded.is_dir() else [])]


def repository(settings: Settings) -> ObjectModelRepository:
    return ObjectModelRepository.default(*object_dirs(settings))


def object_summaries(settings: Settings) -> list[dict[str, Any]]:
    try:
        models = repository(settings)
    except LwM2MError as exc:
        return [{"id": "—", "name": str(exc), "version": "", "resources": 0, "source": ""}]
    return [
        {"id": m.id, "name": m.name, "version": m.version, "resources": len(m.resources),
         "source": Path(m.source).name if m.source else ""}
        for m in sorted(models, key=lambda m: m.id)
    ]


def check_definition(data: bytes, settings: Settings, *, save: bool) -> str:
    """Validate an uploaded DDF file with the core's loader; save it when asked."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInput(
            N_("definitions larger than %(max)s bytes are refused"), max=MAX_UPLOAD_BYTES
        )
    try:
        models = parse_object_definitions(data, "upload")
    except LwM2MError as exc:
        raise InvalidInput(
            N_("not a valid object definition: %(problem)s"), problem=str(exc)
        ) from None
    if not models:
        raise InvalidInput(N_("the file defines no object"))
    summary = ", ".join(f"{m.id} {m.name}" for m in models)
    if save:
        folder = settings.data_dir / UPLOADED_OBJECTS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{models[0].id}.xml").write_bytes(data)
    return summary


def settings_rows(settings: Settings) -> list[tuple[str, str]]:
    rows = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.name in SECRET_SETTINGS:
            value = "••••" if value else ""
        elif f.name == "database_url" and value:
            value = make_url(value).render_as_string(hide_password=True)
        rows.append((f.name, str(value)))
    return rows


# --- resource browser -------------------------------------------------------------------


@dataclass
class ResourceRow:
    path: str
    name: str
    value: object
    updated_at: datetime | None
    readable: bool = True
    writable: bool = False
    executable: bool = False


@dataclass
class ObjectRow:
    id: int
    name: str
    instances: dict[int, list[ResourceRow]] = field(default_factory=dict)


def resource_browser(registration: Any, values: Iterable[Any]) -> list[ObjectRow]:
    """Objects the terminal announced and the last value of each resource we know."""
    models = ObjectModelRepository.default()
    objects: dict[int, ObjectRow] = {}

    def object_row(object_id: int) -> ObjectRow:
        if object_id not in objects:
            name = models.get_object(object_id).name if object_id in models else "?"
            objects[object_id] = ObjectRow(object_id, name)
        return objects[object_id]

    for announced in (registration.objects if registration is not None else []) or []:
        object_id = announced.get("object_id")
        if not isinstance(object_id, int) or object_id == 0:
            continue  # the Security object is never shown (it holds keys)
        row = object_row(object_id)
        for instance_id in announced.get("instances") or []:
            if isinstance(instance_id, int):
                row.instances.setdefault(instance_id, [])
    for value in values:
        try:
            path = LwM2mPath.parse(value.path)
        except (PathError, ValueError):
            continue
        if path.object_id in (None, 0) or path.object_instance_id is None:
            continue
        row = object_row(path.object_id)
        name, flags = str(path.resource_id), (True, False, False)
        try:
            resource = models.get_resource(path)
            name = resource.name
            flags = (resource.operations.readable, resource.operations.writable,
                     resource.operations.executable)
        except LwM2MError:
            pass
        row.instances.setdefault(path.object_instance_id, []).append(
            ResourceRow(value.path, name, value.value, value.updated_at, *flags)
        )
    for row in objects.values():
        for resources in row.instances.values():
            resources.sort(key=lambda r: [int(part) for part in r.path.strip("/").split("/")])
    return [objects[k] for k in sorted(objects)]


# --- backup and restore -----------------------------------------------------------------


def _sqlite_file(settings: Settings) -> Path | None:
    url = make_url(settings.resolved_database_url)
    if not url.drivername.startswith("sqlite") or not url.database:
        return None
    return Path(url.database)


def backup_supported(settings: Settings) -> bool:
    return _sqlite_file(settings) is not None


async def backup(settings: Settings) -> Path:
    """A consistent copy made with SQLite's online backup (safe while the server writes)."""
    source = _sqlite_file(settings)
    if source is None:
        raise InvalidInput(
            N_("backup from the dashboard covers SQLite; use pg_dump for PostgreSQL")
        )
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = Path(tempfile.mkdtemp(prefix="posfleet-backup-")) / f"posfleet-{stamp}.db"

    def copy() -> None:
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        dst.close()
        src.close()

    await asyncio.to_thread(copy)
    return target


async def stream_and_remove(path: Path) -> AsyncIterator[bytes]:
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
    finally:
        path.unlink(missing_ok=True)
        path.parent.rmdir()


async def restore(upload: IO[bytes], settings: Settings) -> None:
    """Replace the live database's content with a backup, after checking it is one.
    SQLite's backup API writes it page by page under the database's own lock."""
    target = _sqlite_file(settings)
    if target is None:
        raise InvalidInput(
            "restore from the dashboard covers SQLite; use pg_restore for PostgreSQL"
        )
    with tempfile.TemporaryDirectory(prefix="posfleet-restore-") as folder:
        candidate = Path(folder) / "upload.db"
        size = 0
        with candidate.open("wb") as handle:
            while chunk := upload.read(CHUNK):
                size += len(chunk)
                if size > MAX_BACKUP_BYTES:
                    raise InvalidInput(N_("the backup file is too large"))
                handle.write(chunk)
        with candidate.open("rb") as handle:
            if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise InvalidInput(N_("that file is not a PosFleet backup (not SQLite)"))

        def check_and_copy() -> None:
            src = sqlite3.connect(candidate)
            try:
                names = {row[0] for row in src.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
                if not REQUIRED_TABLES <= names:
                    raise InvalidInput(N_("that file is not a PosFleet backup (tables missing)"))
                if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise InvalidInput(N_("the backup file is damaged (integrity check failed)"))
                dst = sqlite3.connect(target)
                try:
                    src.backup(dst)
                finally:
                    dst.close()
            finally:
                src.close()

        await asyncio.to_thread(check_and_copy)
