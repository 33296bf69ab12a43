"""The ``posfleet`` command.

Each part of the product contributes its subcommands through a ``register(subparsers)``
function in a light module (no heavy imports at module level), listed in
:data:`COMMAND_MODULES`; the handler imports what it needs when it runs, so
``posfleet lwm2m decode`` does not pay for TensorFlow or the web stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from posfleet import __version__

#: Modules that provide ``register(subparsers)``. A missing module is skipped, so a lean
#: install (without the terminal's vision extra, say) still has a working command.
COMMAND_MODULES = (
    "posfleet.lwm2m_cli",
    "dm_server.cli",
    "device_client.cli",
    "posfleet.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posfleet", description="PosFleet: manage a fleet of smart POS terminals."
    )
    parser.add_argument("--version", action="version", version=f"posfleet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
