"""The REST API (FastAPI): app factory, dependencies, routes by resource."""
