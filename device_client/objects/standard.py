"""Standard objects of the terminal: 0 Security, 1 Server, 3 Device, 4 Connectivity
Monitoring and 10259 System Log. Firmware Update (5) lives in :mod:`device_client.firmware`."""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from enum import IntEnum

from device_client.errors import BadRequest
from device_client.objects.base import InstanceEnabler, ResourceValue
from device_client.settings import TerminalSettings


class SecurityMode(IntEnum):
    """Resource 0/x/2 (TS Core E.1)."""

    PSK = 0
    RPK = 1
    CERTIFICATE = 2
    NO_SEC = 3
    EST = 4


class NetworkBearer(IntEnum):
    """Resource 4/0/0 (TS Core, object 4): the values a wired or Wi-Fi terminal uses."""

    WLAN = 21
    ETHERNET = 41


class R0(IntEnum):
    SERVER_URI = 0
    BOOTSTRAP = 1
    MODE = 2
    IDENTITY = 3
    SERVER_KEY = 4
    SECRET = 5
    SHORT_SERVER_ID = 10


class R1(IntEnum):
    SHORT_SERVER_ID = 0
    LIFETIME = 1
    PMIN = 2
    PMAX = 3
    STORING = 6
    BINDING = 7
    UPDATE_TRIGGER = 8


class R3(IntEnum):
    MANUFACTURER = 0
    MODEL = 1
    SERIAL = 2
    FIRMWARE_VERSION = 3
    REBOOT = 4
    FACTORY_RESET = 5
    MEMORY_FREE = 10
    ERROR_CODE = 11
    RESET_ERROR_CODE = 12
    CURRENT_TIME = 13
    UTC_OFFSET = 14
    TIMEZONE = 15
    BINDINGS = 16
    DEVICE_TYPE = 17
    HARDWARE_VERSION = 18
    SOFTWARE_VERSION = 19
    MEMORY_TOTAL = 21


class DeviceError(IntEnum):
    """Resource 3/0/11 Error Code values we raise (TS Core object 3)."""

    NO_ERROR = 0
    LOW_BATTERY = 1
    EXTERNAL_POWER_OFF = 2
    GPS_FAILURE = 3
    LOW_SIGNAL = 4
    OUT_OF_MEMORY = 5
    SMS_FAILURE = 6
    IP_CONNECTIVITY_FAILURE = 7
    PERIPHERAL_MALFUNCTION = 8


class R4(IntEnum):
    BEARER = 0
    AVAILABLE_BEARERS = 1
    SIGNAL = 2
    LINK_QUALITY = 3
    IP_ADDRESSES = 4
    ROUTER_IPS = 5


class R10259(IntEnum):
    NAME = 0
    READ_ALL = 1
    READ = 2
    ENABLED = 3
    CAPTURE_LEVEL = 4


def security_instance(settings: TerminalSettings) -> InstanceEnabler:
    """Object 0: where the server is and how to authenticate. Never readable by the server."""
    mode = SecurityMode.PSK if settings.secure else SecurityMode.NO_SEC
    return InstanceEnabler(0, {
        R0.SERVER_URI: settings.server_uri,
        R0.BOOTSTRAP: False,
        R0.MODE: int(mode),
        R0.IDENTITY: settings.psk_identity.encode(),
        R0.SERVER_KEY: b"",
        R0.SECRET: settings.psk_key,
        R0.SHORT_SERVER_ID: settings.short_server_id,
    })


class ServerInstance(InstanceEnabler):
    """Object 1: lifetime and notification defaults; writes of the lifetime or an
    Execute of Registration Update Trigger make the agent send an Update."""

    executable = frozenset({R1.UPDATE_TRIGGER})

    def __init__(self, settings: TerminalSettings, trigger_update: Callable[[], None]):
        super().__init__(0, {
            R1.SHORT_SERVER_ID: settings.short_server_id,
            R1.LIFETIME: settings.lifetime,
            R1.PMIN: 0,
            R1.PMAX: 0,
            R1.STORING: True,
            R1.BINDING: settings.binding,
        })
        self._trigger_update = trigger_update

    @property
    def lifetime(self) -> int:
        return int(self.values[R1.LIFETIME])  # type: ignore[arg-type]

    def check_write(self, resource_id: int, value: ResourceValue) -> None:
        if resource_id == R1.LIFETIME and not (isinstance(value, int) and value >= 10):
            raise BadRequest("lifetime must be at least 10 seconds")
        if resource_id in (R1.PMIN, R1.PMAX) and isinstance(value, int) and value < 0:
            raise BadRequest("periods must not be negative")
        if resource_id == R1.BINDING and value not in ("U", "UQ"):
            raise BadRequest("this terminal supports binding U (and UQ) only")

    def write(self, resource_id: int, value: ResourceValue) -> None:
        super().write(resource_id, value)
        if resource_id in (R1.LIFETIME, R1.BINDING):
            self._trigger_update()

    async def execute(self, resource_id: int, arguments: str) -> None:
        self._trigger_update()


def _memory() -> tuple[int, int]:
    """(free, total) in KiB from /proc/meminfo, or zeros where it does not exist."""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return (int(info["MemAvailable"].split()[0]), int(info["MemTotal"].split()[0]))
    except (OSError, KeyError, ValueError):
        return 0, 0


class DeviceInstance(InstanceEnabler):
    """Object 3: identity and versions, memory, errors, clock, reboot and factory reset."""

    executable = frozenset({R3.REBOOT, R3.FACTORY_RESET, R3.RESET_ERROR_CODE})

    def __init__(
        self,
        settings: TerminalSettings,
        firmware_version: Callable[[], str],
        app_version: str,
        reboot: Callable[[], Awaitable[None]],
        factory_reset: Callable[[str], Awaitable[None]],
    ):
        super().__init__(0, {
            R3.MANUFACTURER: settings.manufacturer,
            R3.MODEL: settings.model,
            R3.SERIAL: settings.effective_serial,
            R3.UTC_OFFSET: "+09:00",
            R3.TIMEZONE: "Asia/Seoul",
            R3.BINDINGS: "UQ",
            R3.DEVICE_TYPE: "POS terminal",
            R3.HARDWARE_VERSION: "A1",
            R3.SOFTWARE_VERSION: app_version,
        })
        self.errors: set[DeviceError] = set()
        self.clock_offset = timedelta()
        self._firmware_version = firmware_version
        self._reboot = reboot
        self._factory_reset = factory_reset

    def dynamic_ids(self) -> Iterable[int]:
        return (R3.FIRMWARE_VERSION, R3.MEMORY_FREE, R3.ERROR_CODE, R3.CURRENT_TIME,
                R3.MEMORY_TOTAL)

    def read(self, resource_id: int) -> ResourceValue:
        if resource_id == R3.FIRMWARE_VERSION:
            return self._firmware_version()
        if resource_id == R3.MEMORY_FREE:
            return _memory()[0]
        if resource_id == R3.MEMORY_TOTAL:
            return _memory()[1]
        if resource_id == R3.ERROR_CODE:
            codes = sorted(self.errors) or [DeviceError.NO_ERROR]
            return {i: int(code) for i, code in enumerate(codes)}
        if resource_id == R3.CURRENT_TIME:
            return (datetime.now(UTC) + self.clock_offset).replace(microsecond=0)
        return super().read(resource_id)

    def write(self, resource_id: int, value: ResourceValue) -> None:
        if resource_id == R3.CURRENT_TIME:
            assert isinstance(value, datetime)
            self.clock_offset = value - datetime.now(UTC)
            self.changed(resource_id)
            return
        super().write(resource_id, value)

    def raise_error(self, code: DeviceError) -> None:
        if code not in self.errors:
            self.errors.add(code)
            self.changed(R3.ERROR_CODE)

    async def execute(self, resource_id: int, arguments: str) -> None:
        if resource_id == R3.REBOOT:
            await self._reboot()
        elif resource_id == R3.FACTORY_RESET:
            await self._factory_reset(arguments)
        elif resource_id == R3.RESET_ERROR_CODE:
            self.errors.clear()
            self.changed(R3.ERROR_CODE)


class ConnectivityInstance(InstanceEnabler):
    """Object 4: the terminal is on Ethernet; IP address is the agent's own socket."""

    def __init__(self, local_address: Callable[[], str]):
        super().__init__(0, {
            R4.BEARER: int(NetworkBearer.ETHERNET),
            R4.AVAILABLE_BEARERS: {0: int(NetworkBearer.ETHERNET), 1: int(NetworkBearer.WLAN)},
            R4.SIGNAL: 0,
            R4.LINK_QUALITY: 100,
        })
        self._local_address = local_address

    def dynamic_ids(self) -> Iterable[int]:
        return (R4.IP_ADDRESSES,)

    def read(self, resource_id: int) -> ResourceValue:
        if resource_id == R4.IP_ADDRESSES:
            return {0: self._local_address()}
        return super().read(resource_id)


class LogBuffer(logging.Handler):
    """Keeps the agent's recent log lines in memory for object 10259."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self.read_mark = 0
        self.total = 0
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
            self.total += 1
        except Exception:  # a log line must never break the agent
            self.handleError(record)


#: Cap on one Read of the log, so a response stays a few blocks long.
MAX_LOG_READ_CHARS = 16_000


class SystemLogInstance(InstanceEnabler):
    """Object 10259: Read All returns the kept lines; Read the lines since the last Read."""

    def __init__(self, buffer: LogBuffer, logger: logging.Logger | None, name: str = "agent",
                 instance_id: int = 0):
        super().__init__(instance_id, {R10259.NAME: name, R10259.ENABLED: True,
                                       R10259.CAPTURE_LEVEL: logging.INFO})
        self.buffer = buffer
        self.logger = logger

    def check_write(self, resource_id: int, value: ResourceValue) -> None:
        if resource_id == R10259.NAME and (not isinstance(value, str) or not value
                                           or len(value) > 100):
            raise BadRequest("log name must be a logger name of 1-100 characters")
        self._check_level(resource_id, value)

    def created(self) -> None:
        """After Create: capture the logger named by Name."""
        self.logger = logging.getLogger(str(self.values.get(R10259.NAME) or "device_client"))
        self.logger.addHandler(self.buffer)

    def write(self, resource_id: int, value: ResourceValue) -> None:
        super().write(resource_id, value)
        if resource_id == R10259.ENABLED:
            self.buffer.setLevel(logging.CRITICAL + 1 if not value else logging.NOTSET)
        if resource_id == R10259.CAPTURE_LEVEL:
            self.buffer.setLevel(int(value))  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop capturing (a created instance is deleted)."""
        if self.logger is not None and self.id != 0:
            self.logger.removeHandler(self.buffer)

    def dynamic_ids(self) -> Iterable[int]:
        return (R10259.READ_ALL, R10259.READ)

    def read(self, resource_id: int) -> ResourceValue:
        if resource_id == R10259.READ_ALL:
            return "\n".join(self.buffer.lines)[-MAX_LOG_READ_CHARS:]
        if resource_id == R10259.READ:
            new = self.buffer.total - self.buffer.read_mark
            self.buffer.read_mark = self.buffer.total
            lines = list(self.buffer.lines)[-new:] if new else []
            return "\n".join(lines)[-MAX_LOG_READ_CHARS:]
        return super().read(resource_id)

    @staticmethod
    def _check_level(resource_id: int, value: ResourceValue) -> None:
        if resource_id == R10259.CAPTURE_LEVEL and value not in (
            logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL
        ):
            raise BadRequest("capture level must be a Python logging level: 10, 20, 30, 40, 50")

