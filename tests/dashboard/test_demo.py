"""``posfleet demo``: the command is registered, and "fresh" removes only an earlier demo."""

from __future__ import annotations

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
