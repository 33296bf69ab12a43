"""PosFleet: the ``posfleet`` command and the package version."""

__version__ = "0.1.0"
