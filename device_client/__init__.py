"""The terminal side of PosFleet: the LwM2M agent (:mod:`device_client.agent`), firmware
update (:mod:`device_client.firmware`), the durable event outbox (:mod:`device_client.store`)
and the fleet simulator (:mod:`device_client.simulator`). See docs/terminal.md."""
