"""CoAP download of stored packages: ``GET /fw/<file>`` with Block2 (RFC 7959).

Blocks are read from disk on demand, so a client can ask for any block first: that is how a
terminal resumes an interrupted download. The ETag is taken from the package's SHA-256.
"""

from __future__ import annotations

import asyncio

import aiocoap
from aiocoap import resource
from aiocoap.numbers.codes import Code
from aiocoap.optiontypes import BlockOption

from dm_server.firmware.store import PackageNotFound, PackageStore
from lwm2m_core.numbers import ContentFormat

#: Largest block we send: 2**(6+4) = 1024 bytes, the biggest RFC 7959 allows.
MAX_SIZE_EXPONENT = 6


class PackageResource(resource.Resource, resource.PathCapable):
    """Mounted at ``/fw``; ``/fw/<file>`` is one package."""

    def __init__(self, store: PackageStore) -> None:
        super().__init__()
        self.store = store

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return False  # Block2 is answered here, straight from the file

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        if request.code != Code.GET:
            return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)
        if len(request.opt.uri_path) != 1:
            return aiocoap.Message(code=Code.NOT_FOUND, payload=b"use /fw/<package file>")
        name = request.opt.uri_path[0]
        try:
            package = self.store.get(name)
        except PackageNotFound as exc:
            return aiocoap.Message(code=Code.NOT_FOUND, payload=str(exc).encode()[:200])
        wanted = request.opt.block2
        szx = min(wanted.size_exponent if wanted else MAX_SIZE_EXPONENT, MAX_SIZE_EXPONENT,
                  request.remote.maximum_block_size_exp)
        block_size = 1 << (szx + 4)
        number = wanted.block_number if wanted else 0
        offset = number * block_size
        if offset >= package.size and not (offset == 0 and package.size == 0):
            return aiocoap.Message(code=Code.BAD_OPTION, payload=b"block beyond the end")
        chunk = await asyncio.to_thread(self.store.read, name, offset, block_size)
        more = offset + len(chunk) < package.size
        response = aiocoap.Message(code=Code.CONTENT, payload=chunk)
        response.opt.content_format = int(ContentFormat.OPAQUE)
        response.opt.etag = package.etag
        response.opt.block2 = BlockOption.BlockwiseTuple(number, more, szx)
        response.opt.size2 = package.size
        return response
