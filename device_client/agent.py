"""The terminal's LwM2M agent: object tree, CoAP site, registration, Send, firmware.

One aiocoap context carries both roles: it is the client that registers (so the server sees
requests come from the address it will send DM requests to) and the server that answers
those requests. Start it in-process with ``agent = Agent(settings); await agent.start()``,
stop with ``await agent.stop()``; :func:`run_terminal` is the command-line loop that also
performs restarts (Reboot, firmware update) by building a fresh agent from disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import aiocoap
from aiocoap.numbers.codes import Code
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device_client import coap_request
from device_client.errors import BadRequest, ServiceUnavailable
from device_client.firmware import FirmwareUpdater
from device_client.objects.base import ObjectEnabler, ObjectTree, parse_execute_arguments
from device_client.objects.pos_objects import (
    CustomerInsightInstance,
    EventObject,
    LicenceInstance,
    PosTerminalInstance,
    event_instance_id,
    event_values,
)
from device_client.objects.standard import (
    ConnectivityInstance,
    DeviceInstance,
    LogBuffer,
    ServerInstance,
    SystemLogInstance,
    security_instance,
)
from device_client.pos import PosTerminal
from device_client.registration import RegistrationClient, backoff_delay
from device_client.settings import TerminalSettings
from device_client.site import LwM2mSite
from device_client.store import PosEvent, TerminalStore
from lwm2m_core import codec
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.node import LwM2mObjectInstance, LwM2mSingleResource
from lwm2m_core.numbers import ContentFormat
from lwm2m_core.path import LwM2mPath

APP_VERSION = "posfleet-pos 1.0"
POS_TERMINAL, POS_LICENSE, POS_EVENT, CUSTOMER_INSIGHT = 26241, 26242, 26243, 26244
DEVICE, SERVER, SECURITY, CONNECTIVITY, FIRMWARE, SYSTEM_LOG = 3, 1, 0, 4, 5, 10259
#: Delay between answering Execute Reboot and going down, so the 2.04 leaves first.
RESTART_GRACE = 0.2
#: Longest wait between Send retries while the server does not acknowledge.
SEND_RETRY_MAX = 60.0
STORE_FILE = "terminal.sqlite3"
#: Longest wait for the agent's tasks to end on stop.
STOP_TIMEOUT = 3.0


class RestartRequested(Exception):
    pass


_models_cache: ObjectModelRepository | None = None


def default_models() -> ObjectModelRepository:
    """The shipped object definitions, loaded once per process (the simulator runs many)."""
    global _models_cache
    if _models_cache is None:
        _models_cache = ObjectModelRepository.default()
    return _models_cache


def load_trusted_keys(text: str) -> list[Ed25519PublicKey]:
    """Manufacturer public keys: base64url raw keys (comma-separated) or a PEM file path."""
    from cryptography.hazmat.primitives import serialization

    from posfleet.licence_token import public_key_from_text

    keys: list[Ed25519PublicKey] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        path = Path(item)
        if path.is_file():
            raw = path.read_bytes()
            if raw.lstrip().startswith(b"-----"):
                key = serialization.load_pem_public_key(raw)
                if not isinstance(key, Ed25519PublicKey):
                    raise ValueError(f"{path}: not an Ed25519 public key")
                keys.append(key)
                continue
            item = raw.decode().strip()
        keys.append(public_key_from_text(item))
    return keys


class Agent:
    """One terminal's agent. Not restartable: build a new one for a restart."""

    def __init__(self, settings: TerminalSettings, models: ObjectModelRepository | None = None,
                 rng: random.Random | None = None) -> None:
        self.settings = settings.validate()
        self.models = models or default_models()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.log = logging.getLogger(f"device_client.agent.{settings.endpoint}")
        self.log_buffer = LogBuffer(settings.log_lines)
        self.log.addHandler(self.log_buffer)
        if self.log.level == logging.NOTSET:
            self.log.setLevel(logging.INFO)
        self.data_dir = Path(settings.data_dir)
        self.store = TerminalStore(self.data_dir / STORE_FILE, settings.outbox_sync)
        self.pos = PosTerminal(self.store, settings.currency)
        self.trusted_keys = load_trusted_keys(settings.manufacturer_key)
        self.context: aiocoap.Context | None = None
        self.registration: RegistrationClient | None = None
        self.restart_reason: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_wakeup = asyncio.Event()
        self.sent_events = 0
        self.firmware = FirmwareUpdater(
            self.data_dir, settings.firmware_version, lambda: self.trusted_keys,
            lambda: self.context, self.request_restart, self.log,
            settings.firmware_confirm_timeout, settings.request_timeout,
        )
        self.tree = self._build_tree()
        self.site = LwM2mSite(self.tree, self.log, self._from_server,
                              raw_opaque_paths=frozenset({LwM2mPath(FIRMWARE, 0, 0)}))
        self.pos.listeners.append(lambda event: self._send_wakeup.set())
        self.tree.listeners.append(self._instances_changed)

    # -- objects --------------------------------------------------------------------------
    def _build_tree(self) -> ObjectTree:
        s, m = self.settings, self.models
        tree = ObjectTree(m)
        app = self.firmware.software.app_config()
        self.server_instance = ServerInstance(s, self._trigger_update)
        self.device = DeviceInstance(
            s, self.firmware.software.current_version, str(app.get("app_version", APP_VERSION)),
            self._execute_reboot, self._execute_factory_reset,
        )
        tree.add(ObjectEnabler(m.get_object(SECURITY), [security_instance(s)]))
        tree.add(ObjectEnabler(m.get_object(SERVER), [self.server_instance]))
        tree.add(ObjectEnabler(m.get_object(DEVICE), [self.device]))
        tree.add(ObjectEnabler(m.get_object(CONNECTIVITY), [ConnectivityInstance(self._local_ip)]))
        tree.add(ObjectEnabler(m.get_object(FIRMWARE), [self.firmware]))
        syslog = SystemLogInstance(self.log_buffer, self.log)
        tree.add(ObjectEnabler(m.get_object(SYSTEM_LOG), [syslog],
                               factory=self._new_log_capture,
                               on_delete=lambda instance: instance.close(),
                               protected=frozenset({0})))
        tree.add(ObjectEnabler(m.get_object(POS_TERMINAL), [PosTerminalInstance(
            self.pos, self.store, str(app.get("app_version", APP_VERSION)),
            s.store_id, s.store_name)]))
        self.licence = LicenceInstance(self.store, s.endpoint, lambda: self.trusted_keys, self.log)
        tree.add(ObjectEnabler(m.get_object(POS_LICENSE), [self.licence]))
        tree.add(EventObject(m.get_object(POS_EVENT), self.store, s.events_kept))
        self.insight = CustomerInsightInstance(self.pos, self.store)
        tree.add(ObjectEnabler(m.get_object(CUSTOMER_INSIGHT), [self.insight]))
        return tree

    def _new_log_capture(self, instance_id: int) -> SystemLogInstance:
        """Create on 10259: a server adds a capture of one more logger (Name = logger name,
        e.g. ``aiocoap``); Delete removes it again."""
        return SystemLogInstance(LogBuffer(self.settings.log_lines), None, name="",
                                 instance_id=instance_id)

    def registration_paths(self) -> list[LwM2mPath]:
        paths = []
        for path in self.tree.instance_paths():
            if path.object_id == SECURITY:
                continue  # TS Core §6.2.1: Security is never listed
            enabler = self.tree.objects[path.object_id]  # type: ignore[index]
            if not getattr(enabler, "listed_in_registration", True):
                if path.is_object_instance:
                    continue
            paths.append(path)
        for oid, enabler in self.tree.objects.items():
            if not getattr(enabler, "listed_in_registration", True):
                paths.append(LwM2mPath(oid))
        return sorted(set(paths))

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the CoAP context and begin registering; returns at once."""
        s = self.settings
        transports = ["tinydtls", "udp6"] if s.secure else ["udp6"]
        with coap_request.exclusive_port():
            self.context = await aiocoap.Context.create_server_context(
                self.site, bind=(s.bind_host, s.bind_port), transports=transports,
            )
        if s.secure:
            self.context.client_credentials.load_from_dict({
                f"{s.server_uri.rstrip('/')}/*": {
                    "dtls": {"psk": s.psk_key, "client-identity": s.psk_identity.encode()},
                },
            })
        self.firmware.on_start()
        self.registration = RegistrationClient(
            self.context, s, self.registration_paths, lambda: self.server_instance.lifetime,
            self.log, self.rng,
        )
        self.registration.on_registered.append(self.firmware.on_registered)
        self.registration.on_registered.append(self._send_wakeup.set)
        self._spawn(self.registration.run())
        self._spawn(self._send_loop())
        self._spawn(self.firmware.watch_confirmation())
        self.firmware.resume_after_restart()
        self.log.info("agent %s started (software %s) for %s", s.endpoint,
                      self.firmware.software.current_version(), s.server_uri)

    def spawn(self, coroutine) -> None:  # type: ignore[no-untyped-def]
        """Run ``coroutine`` for as long as this agent runs (cancelled by :meth:`stop`)."""
        self._spawn(coroutine)

    def _spawn(self, coroutine) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("agent task failed: %r", task.exception())

    async def stop(self, deregister: bool = True) -> None:
        """Stop every task, de-register (unless told not to) and close the context."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        self.firmware.close()
        self.site.close()
        if deregister and self.registration is not None:
            await self.registration.deregister()
        if self.context is not None:
            await self.context.shutdown()
            self.context = None
        self.store.close()
        self.log.removeHandler(self.log_buffer)
        self.log.info("agent %s stopped", self.settings.endpoint)

    def request_restart(self, reason: str) -> None:
        if not self.restart_reason.done():
            self.restart_reason.set_result(reason)

    @property
    def registered(self) -> bool:
        return self.registration is not None and self.registration.registered.is_set()

    def _trigger_update(self) -> None:
        if self.registration is not None:
            self.registration.trigger_update()

    def _from_server(self, request: aiocoap.Message) -> bool:
        """DM requests are accepted only from the server we registered with."""
        registration = self.registration
        if registration is None or not registration.state.server_hostinfo:
            return True  # registering: the server may ask before our 2.01 is processed
        return request.remote.hostinfo == registration.state.server_hostinfo

    def _instances_changed(self, path: LwM2mPath) -> None:
        """Create and Delete change the object list: tell the server with an Update."""
        if path.is_object and path.object_id != POS_EVENT:
            self._trigger_update()

    def _local_ip(self) -> str:
        return self.settings.bind_host

    # -- Execute hooks --------------------------------------------------------------------
    async def _execute_reboot(self) -> None:
        self.log.warning("reboot requested by the server")
        asyncio.get_running_loop().call_later(RESTART_GRACE, self.request_restart, "reboot")

    async def _execute_factory_reset(self, arguments: str) -> None:
        """Wipe local state. Rules: argument 0 must repeat the serial number (unless that
        check is switched off); refused while a shift is open or events are unsent, unless
        argument 1 is ``force``."""
        args = parse_execute_arguments(arguments)
        confirmed = args.get(0) == self.settings.effective_serial
        if self.settings.factory_reset_needs_confirm and not confirmed:
            raise BadRequest("factory reset needs the argument 0='<serial number>'")
        forced = args.get(1) == "force"
        if not forced and self.pos.counters.shift_open:
            raise ServiceUnavailable("a shift is open; close it or pass 1='force'")
        if not forced and self.store.pending_count():
            raise ServiceUnavailable(
                f"{self.store.pending_count()} events not yet delivered; wait or pass 1='force'")
        self.log.warning("factory reset requested by the server%s", " (forced)" if forced else "")
        asyncio.get_running_loop().call_later(RESTART_GRACE, self.request_restart, "factory reset")

    # -- Send -----------------------------------------------------------------------------
    def send_payload(self, events: list[PosEvent]) -> bytes:
        """SenML-CBOR of the 26243 instances for ``events``, stamped with their times."""
        records = []
        model = self.models.get_object(POS_EVENT)
        for event in events:
            path = LwM2mPath(POS_EVENT, event_instance_id(event.sequence or 0))
            resources = {
                rid: LwM2mSingleResource(rid, model.resources[rid].type, value)
                for rid, value in event_values(event).items()
            }
            node = LwM2mObjectInstance(path.object_instance_id, resources)  # type: ignore[arg-type]
            records.extend(codec.node_to_records(node, path, self.models, event.time))
        return codec.encode_records(records, ContentFormat.SENML_CBOR, self.models)

    async def _send_loop(self) -> None:
        attempt = 0
        while True:
            if self.registration is None or not self.registration.registered.is_set():
                self._send_wakeup.clear()
                await self._send_wakeup.wait()
                continue
            events = self.store.pending(self.settings.send_batch)
            if not events:
                self._send_wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.send_interval * 30):
                        await self._send_wakeup.wait()
                continue
            if await self._send(events):
                attempt = 0
                continue
            delay = backoff_delay(attempt, self.settings.send_interval, SEND_RETRY_MAX, self.rng)
            attempt += 1
            await asyncio.sleep(delay)

    async def _send(self, events: list[PosEvent]) -> bool:
        assert self.context is not None
        message = aiocoap.Message(
            code=Code.POST, uri=f"{self.settings.server_uri.rstrip('/')}/dp",
            payload=self.send_payload(events), content_format=int(ContentFormat.SENML_CBOR),
        )
        try:
            response = await coap_request.request(self.context, message,
                                                  self.settings.request_timeout)
        except (TimeoutError, aiocoap.error.Error, OSError) as exc:
            self.log.info("Send of %d events got no answer (%s)", len(events), type(exc).__name__)
            return False
        if not response.code.is_successful():
            self.log.warning("Send refused: %s %r", response.code, response.payload[:100])
            if response.code in (Code.NOT_FOUND, Code.FORBIDDEN, Code.UNAUTHORIZED):
                self._trigger_update()  # maybe the server forgot us: the Update will tell
            return False
        self.store.acknowledge([e.sequence or 0 for e in events], self.settings.events_kept)
        self.sent_events += len(events)
        self.tree._changed(LwM2mPath(POS_EVENT))
        return True


def wipe_local_state(settings: TerminalSettings) -> None:
    """Factory reset on disk: the store and the firmware work files (not the software)."""
    data_dir = Path(settings.data_dir)
    for name in (STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm"):
        (data_dir / name).unlink(missing_ok=True)
    shutil.rmtree(data_dir / "firmware", ignore_errors=True)


async def run_terminal(
    settings: TerminalSettings,
    stop: asyncio.Event | None = None,
    on_start: Callable[[Agent], None] | None = None,
) -> int:
    """Run the agent until ``stop`` is set, restarting it on Reboot and firmware updates.
    ``on_start`` is called with each fresh agent (e.g. to start the trading generator)."""
    stop = stop or asyncio.Event()
    while True:
        agent = Agent(settings)
        await agent.start()
        if on_start is not None:
            on_start(agent)
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({stopper, agent.restart_reason},
                                     return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if agent.restart_reason in done:
            reason = agent.restart_reason.result()
            await agent.stop(deregister=True)
            agent.log.warning("restarting the terminal software (%s)", reason)
            if reason == "factory reset":
                wipe_local_state(settings)
            continue
        await agent.stop(deregister=True)
        return 0
