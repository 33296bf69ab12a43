"""``POST /api/v1/terminals/{endpoint}/{operation}``: LwM2M device management.

Body: ``{"path": "/3/0/1", "value": ..., "format": "senml-cbor", "mode": "replace",
"arguments": "...", "attributes": {"pmin": 10}, "instance_id": 1, "queue": false}`` (each
field where the operation needs it). Answer: the decoded value and CoAP code
(``status`` done / failed), ``queued`` with an operation id, or ``timeout``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from dm_server.api.deps import BriefAccount, Core
from dm_server.lwm2m.operations import OperationKind, OperationRequest
from dm_server.services import audit

router = APIRouter(prefix="/api/v1/terminals", tags=["operations"])

#: HTTP status per outcome: the API call worked even when the terminal said 4.04.
STATUS_HTTP = {"done": 200, "failed": 200, "queued": 202, "timeout": 504}


class OperationBody(BaseModel):
    path: str
    value: Any = None
    format: str | None = None
    mode: str | None = None
    arguments: str | None = None
    attributes: dict[str, Any] | None = None
    instance_id: int | None = None
    queue: bool = False


class QueuedOperationOut(BaseModel):
    id: int
    kind: str
    request: dict[str, Any]
    status: str
    result: dict[str, Any] | None
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None


@router.get("/{endpoint}/operations/{operation_id}", response_model=QueuedOperationOut)
async def queued_operation(
    endpoint: str, operation_id: int, caller: BriefAccount, core: Core
) -> QueuedOperationOut:
    op = await core.lwm2m.operations.get_operation(caller, endpoint, operation_id)
    return QueuedOperationOut(
        id=op.id,
        kind=op.kind,
        request=op.request,
        status=op.status.value,
        result=op.result,
        created_at=op.created_at,
        expires_at=op.expires_at,
        finished_at=op.finished_at,
    )


@router.post(
    "/{endpoint}/{operation}",
    summary="Read, write, execute, discover, observe, cancel-observe, write-attributes, "
    "create or delete on a terminal",
)
async def operate(
    endpoint: str,
    operation: Annotated[OperationKind, Path()],
    body: Annotated[OperationBody, Body()],
    caller: BriefAccount,
    core: Core,
) -> JSONResponse:
    request = OperationRequest.from_json(operation.value, body.model_dump(exclude={"queue"}))
    result = await core.lwm2m.operations.perform(caller, endpoint, request, queue=body.queue)
    if operation not in (OperationKind.READ, OperationKind.DISCOVER):
        async with core.db.session() as session:  # after perform: the terminal is the caller's
            audit.record(
                session,
                caller,
                f"operation.{operation.value}",
                "terminal",
                endpoint,
                path=body.path,
                status=result.get("status"),
            )
    return JSONResponse(result, status_code=STATUS_HTTP.get(str(result.get("status")), 200))
