"""Services: what the CoAP side, the REST API and the dashboard ask the server to do.

They take an ``AsyncSession`` (or open one from :class:`dm_server.db.session.Database`),
raise :mod:`dm_server.errors` on bad input, and never speak CoAP or HTTP themselves.
"""
