"""The DM server's settings: the only place that reads ``POSFLEET_*`` variables and flags.

Every value has a default that runs the embedded set-up (SQLite in the data folder, CoAP
5683, CoAPs 5684, HTTP 8000); an environment variable overrides the default and a
command-line flag overrides the variable. Tests build :class:`Settings` directly.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

ENV_PREFIX = "POSFLEET_"


def _is_any_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return host in ("", "*")


@dataclass(frozen=True)
class Settings:
    """What the server needs to start. Field names map to ``POSFLEET_<NAME>`` variables."""

    #: Address the CoAP and HTTP endpoints bind to.
    bind: str = "0.0.0.0"  # noqa: S104 - a server listens on every interface by default
    #: Plain CoAP (NoSec) port; 0 picks a free port (tests).
    coap_port: int = 5683
    #: DTLS-PSK (coaps) port; 0 picks a free port; -1 turns DTLS off.
    coaps_port: int = 5684
    #: aiocoap's DTLS server refuses the any-address; empty means "bind, or 127.0.0.1".
    dtls_address: str = ""
    http_port: int = 8000
    #: Folder for the SQLite database and server-owned files (token secret).
    data_dir: Path = Path("posfleet-data")
    #: SQLAlchemy URL; empty means SQLite file ``server.db`` in ``data_dir``.
    database_url: str = ""
    admin_user: str = "admin"
    #: Empty: a password is generated on first start and printed once.
    admin_password: str = ""
    #: Secret signing API tokens; empty: generated once and kept in ``data_dir``.
    token_secret: str = ""
    token_lifetime_s: int = 12 * 3600
    #: Development only: accept registrations from unknown endpoints over plain CoAP.
    dev_auto_accept: bool = False
    #: How long a queued operation for a sleeping (b=Q) terminal may wait.
    queue_expiry_s: int = 24 * 3600
    #: A queue-mode terminal counts as awake this long after its last message.
    queue_awake_s: float = 20.0
    #: Bound on one DM request to a terminal (covers CoAP retransmissions).
    request_timeout_s: float = 20.0
    #: How often registrations are checked for lapsed lifetimes.
    expiry_sweep_s: float = 10.0
    #: Follow-ups of Registers (re-observe, queued operations) running at once.
    follow_up_concurrency: int = 16
    #: Minutes after the last sale that a terminal with a closed shift still counts Running.
    running_grace_s: int = 300
    #: Registration lifetimes outside this range are refused (TS Core §6.2.1: lt in s).
    min_lifetime_s: int = 10
    max_lifetime_s: int = 30 * 24 * 3600
    #: Largest CoAP request body accepted by /rd and /dp.
    max_payload_bytes: int = 64 * 1024
    #: Per-source-host flood limit: sustained requests/s and burst size. Terminals behind
    #: one carrier NAT share a host, so this is far above what one terminal sends.
    rate_limit_per_s: float = 200.0
    rate_limit_burst: int = 500
    #: aiocoap keeps each received confirmable message this long for deduplication.
    exchange_lifetime_s: float = 60.0
    #: Extra folders with object definitions (DDF XML) beside object_defs/.
    object_dirs: tuple[Path, ...] = field(default_factory=tuple)
    log_level: str = "INFO"
    # --- accounts, licences, dashboard ---
    #: Ed25519 key signing licence tokens; empty: ``licence-signing.pem`` in ``data_dir``.
    licence_key_file: str = ""
    #: Yearly list price per edition in minor units of the currency (revenue forecast).
    licence_prices: str = "basic=120000,standard=240000,premium=360000"
    licence_currency: str = "KRW"
    licence_grace_days: int = 14
    #: Log-in lock-out: this many wrong passwords in a row lock the account this long.
    login_max_failures: int = 5
    login_lockout_s: int = 900
    #: Mark the session cookie Secure (set when the dashboard is served over HTTPS).
    cookie_secure: bool = False
    #: Dashboard language for new accounts and the log-in page: ko or en.
    default_locale: str = "ko"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'server.db').resolve()}"

    @property
    def resolved_licence_key_file(self) -> Path:
        if self.licence_key_file:
            return Path(self.licence_key_file)
        return self.data_dir / "licence-signing.pem"

    def licence_price_list(self) -> dict[str, int]:
        """``licence_prices`` as {edition: yearly price}; a malformed entry stops start-up."""
        prices = {}
        for item in filter(None, (p.strip() for p in self.licence_prices.split(","))):
            edition, _, amount = item.partition("=")
            try:
                prices[edition.strip()] = int(amount)
            except ValueError:
                raise SystemExit(
                    f"{ENV_PREFIX}LICENCE_PRICES: {item!r} is not edition=amount"
                ) from None
        return prices

    @property
    def dtls_enabled(self) -> bool:
        return self.coaps_port >= 0

    @property
    def resolved_dtls_address(self) -> str:
        if self.dtls_address:
            return self.dtls_address
        return "127.0.0.1" if _is_any_address(self.bind) else self.bind

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then ``POSFLEET_*`` variables, then ``overrides`` (flags) that are not None."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _convert(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)


def _convert(name: str, type_name: object, raw: str) -> object:
    kind = str(type_name)
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off", ""):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
        if kind.startswith("tuple"):
            return tuple(Path(p) for p in raw.split(os.pathsep) if p)
    except ValueError:
        raise SystemExit(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``posfleet server`` (each also settable as ``POSFLEET_<NAME>``)."""
    parser.add_argument("--bind", help="address to listen on (POSFLEET_BIND)")
    parser.add_argument("--coap-port", type=int, help="CoAP NoSec port (POSFLEET_COAP_PORT)")
    parser.add_argument(
        "--coaps-port", type=int, help="CoAP DTLS-PSK port, -1 = off (POSFLEET_COAPS_PORT)"
    )
    parser.add_argument("--dtls-address", help="concrete IP for DTLS (POSFLEET_DTLS_ADDRESS)")
    parser.add_argument("--http-port", type=int, help="HTTP API port (POSFLEET_HTTP_PORT)")
    add_database_arguments(parser)
    parser.add_argument(
        "--dev-auto-accept",
        action="store_const",
        const=True,
        help="DEVELOPMENT ONLY: accept unknown endpoints over plain CoAP "
        "(POSFLEET_DEV_AUTO_ACCEPT)",
    )
    parser.add_argument(
        "--queue-expiry",
        dest="queue_expiry_s",
        type=int,
        help="seconds a queued operation waits for a sleeping terminal (POSFLEET_QUEUE_EXPIRY_S)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING (POSFLEET_LOG_LEVEL)")


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="data folder (POSFLEET_DATA_DIR)")
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL, default SQLite in the data folder (POSFLEET_DATABASE_URL)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    names = {f.name for f in fields(Settings)}
    return Settings.from_env(**{k: v for k, v in vars(args).items() if k in names})
