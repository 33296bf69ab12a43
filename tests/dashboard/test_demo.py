"""``posfleet demo``: the command is registered, "fresh" removes only an earlier demo, and
every wait in start-up is bounded."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from sqlalchemy import select

from dm_server.db.models.licence import Licence, LicenceDelivery
from posfleet import demo
from posfleet.cli import build_parser
from posfleet.demo import DEFAULT_TERMINALS, _run, fresh_data_dir


def test_demo_command_is_registered() -> None:
    args = build_parser().parse_args(["demo", "--terminals", "3", "--port", "0"])
    assert args.handler is _run and args.terminals == 3 and args.port == 0
    assert build_parser().parse_args(["demo"]).terminals == DEFAULT_TERMINALS


def test_fresh_removes_only_the_old_demo(tmp_path) -> None:
    (tmp_path / "server.db").write_text("old")
    (tmp_path / "server.db-wal").write_text("old")
    (tmp_path / "terminals" / "pos-0001").mkdir(parents=True)
    (tmp_path / "licence-signing.pem").write_text("key")
    (tmp_path / "notes.txt").write_text("mine")
    fresh_data_dir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["licence-signing.pem", "notes.txt"]


async def _forever(*_args: object, **_kwargs: object) -> None:
    """A step that never finishes: what a stuck database or terminal looks like from here."""
    await asyncio.Event().wait()


async def test_start_up_does_not_hang_when_registration_and_delivery_do(
    tmp_path, monkeypatch, caplog
) -> None:
    """Waiting for registration and licence delivery that never finish costs their bound
    (and a warning): the demo comes up, its licences issued but not delivered."""
    from device_client.simulator import Fleet
    from dm_server.services import licensing

    monkeypatch.setattr(demo, "REGISTRATION_WAIT_S", 0.5)
    monkeypatch.setattr(demo, "LICENCE_DELIVERY_S", 0.5)
    monkeypatch.setattr(Fleet, "wait_registered", _forever)
    monkeypatch.setattr(licensing, "deliver", _forever)
    caplog.set_level(logging.WARNING, logger="posfleet.demo")
    started = time.monotonic()
    async with asyncio.timeout(30):
        running = await demo.start_demo(tmp_path, terminals=2, http_port=0, password="x" * 12,
                                        secure=False)
    try:
        assert time.monotonic() - started < 20
        warnings = " ".join(r.getMessage() for r in caplog.records)
        assert "2 of 2 demo licences were not delivered" in warnings
        async with running.server.db.session() as session:
            rows = (await session.scalars(select(Licence))).all()
        assert [r.delivery for r in rows] == [LicenceDelivery.PENDING] * 2
    finally:
        await running.stop()


async def test_a_stuck_step_fails_with_a_clear_message(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "DATABASE_STEP_S", 0.3)
    monkeypatch.setattr(demo, "_create_tree", _forever)
    async with asyncio.timeout(30):
        with pytest.raises(demo.DemoStartError, match=r"creating the demo accounts did not "
                           r"finish within 0\.3 s"):
            await demo.start_demo(tmp_path, terminals=1, http_port=0, fleet=False)
