"""Terminal settings: the one place that reads ``POSFLEET_*`` environment variables for the agent.

Every setting has a default, an environment variable and (in :mod:`device_client.cli`) a
flag; a flag beats the environment, which beats the default. Secrets (the PSK) come from the
environment or a file, never from the repository.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

#: Scheme of an unencrypted (NoSec) server URI and of a DTLS-PSK one.
SCHEME_NOSEC = "coap"
SCHEME_DTLS = "coaps"
_ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$")


class SettingsError(ValueError):
    """A setting has a value the agent cannot use; the message names it."""


@dataclass(frozen=True)
class TerminalSettings:
    """What one terminal agent needs to run. Durations are seconds."""

    server_uri: str = "coap://127.0.0.1:5683"
    endpoint: str = "posfleet-terminal"
    psk_identity: str = ""
    psk_key: bytes = b""
    data_dir: Path = Path("var/terminal")
    #: Address the agent's own CoAP socket binds to (port 0: any free port).
    bind_host: str = "127.0.0.1"
    bind_port: int = 0
    lifetime: int = 300
    binding: str = "U"
    short_server_id: int = 1
    #: Re-registration backoff: first delay, ceiling; each wait is uniform in [0, delay].
    backoff_initial: float = 2.0
    backoff_max: float = 300.0
    #: How long before the end of the lifetime the Update goes out (fraction of lifetime).
    update_margin: float = 0.2
    request_timeout: float = 10.0
    #: Outbox: events per Send and pause between drains when idle.
    send_batch: int = 20
    send_interval: float = 1.0
    #: Events kept for reading in object 26243 after the server acknowledged them.
    events_kept: int = 50
    #: Firmware: the manufacturer's Ed25519 public key (32 raw bytes as base64url or hex,
    #: or a path to a PEM file) that signs packages and licence tokens.
    manufacturer_key: str = ""
    #: Seconds the new software has to register after an update before it is rolled back.
    firmware_confirm_timeout: float = 60.0
    firmware_version: str = "1.0.0"
    manufacturer: str = "PosFleet"
    model: str = "PF-100"
    serial: str = ""
    currency: str = "KRW"
    store_id: str = ""
    store_name: str = ""
    #: Lines of log kept in memory for object 10259.
    log_lines: int = 200
    #: Factory reset needs a Confirm (Execute argument ``0='<serial>'``) unless this is off.
    factory_reset_needs_confirm: bool = True
    #: Built-in trading generator (for demos and the kill test): sales per minute, 0 = off.
    trade_rate: float = 0.0
    #: SQLite synchronous mode of the outbox: FULL on a real terminal (power-cut safe);
    #: the simulator uses NORMAL (see docs/terminal.md).
    outbox_sync: str = "FULL"
    extra_object_dirs: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def secure(self) -> bool:
        return urlsplit(self.server_uri).scheme == SCHEME_DTLS

    @property
    def effective_serial(self) -> str:
        return self.serial or f"SN-{self.endpoint}"

    def validate(self) -> TerminalSettings:
        """Return self, or raise SettingsError naming the first unusable setting."""
        parts = urlsplit(self.server_uri)
        if parts.scheme not in (SCHEME_NOSEC, SCHEME_DTLS) or not parts.hostname:
            raise SettingsError(
                f"server URI {self.server_uri!r} must be coap://HOST[:PORT] or coaps://HOST[:PORT]"
            )
        if not _ENDPOINT_NAME.match(self.endpoint):
            raise SettingsError(
                f"endpoint name {self.endpoint!r}: use 1-63 letters, digits, '.', '_', ':' or '-'"
            )
        if self.secure and not (self.psk_identity and self.psk_key):
            raise SettingsError("a coaps:// server needs a PSK identity and key")
        if self.lifetime < 10:
            raise SettingsError(f"lifetime {self.lifetime} s is too short (at least 10 s)")
        if not 0 < self.update_margin < 1:
            raise SettingsError("update margin must be a fraction between 0 and 1")
        if self.outbox_sync not in ("FULL", "NORMAL"):
            raise SettingsError("outbox sync must be FULL or NORMAL")
        if self.backoff_initial <= 0 or self.backoff_max < self.backoff_initial:
            raise SettingsError("backoff: need 0 < initial <= max")
        return self

    def with_(self, **changes: object) -> TerminalSettings:
        return replace(self, **changes)  # type: ignore[arg-type]


def parse_psk(text: str) -> bytes:
    """A PSK given as ``hex:0011..``, ``base64:...`` or plain text (its UTF-8 bytes)."""
    import base64
    import binascii

    if text.startswith("hex:"):
        try:
            return bytes.fromhex(text[4:])
        except ValueError:
            raise SettingsError("PSK after 'hex:' is not hexadecimal") from None
    if text.startswith("base64:"):
        try:
            return base64.b64decode(text[7:], validate=True)
        except binascii.Error:
            raise SettingsError("PSK after 'base64:' is not base64") from None
    return text.encode("utf-8")


_ENV_PREFIX = "POSFLEET_"
#: Setting name -> environment variable (without the prefix), where it differs from upper().
_ENV_NAMES = {"server_uri": "SERVER", "psk_key": "PSK_KEY", "data_dir": "TERMINAL_DATA_DIR"}


def env_name(setting: str) -> str:
    return _ENV_PREFIX + _ENV_NAMES.get(setting, setting.upper())


def _convert(name: str, raw: str, default: object) -> object:
    try:
        if name == "psk_key":
            return parse_psk(raw)
        if isinstance(default, bool):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
        if isinstance(default, tuple):
            return tuple(Path(p) for p in raw.split(os.pathsep) if p)
    except ValueError:
        raise SettingsError(f"{env_name(name)}={raw!r} is not a valid value") from None
    return raw


def load_settings(
    overrides: dict[str, object] | None = None, environ: dict[str, str] | None = None
) -> TerminalSettings:
    """Defaults, then ``POSFLEET_*`` environment variables, then ``overrides`` (flags)."""
    environ = dict(os.environ if environ is None else environ)
    base = TerminalSettings()
    values: dict[str, object] = {}
    for item in fields(TerminalSettings):
        raw = environ.get(env_name(item.name))
        if raw is not None:
            values[item.name] = _convert(item.name, raw, getattr(base, item.name))
    psk_file = environ.get(_ENV_PREFIX + "PSK_FILE")
    if psk_file and "psk_key" not in values:
        values["psk_key"] = parse_psk(Path(psk_file).read_text().strip())
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    return replace(base, **values).validate()  # type: ignore[arg-type]
