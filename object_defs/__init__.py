"""LwM2M object definitions in the OMA DDF XML format, one ``<id>.xml`` per object.

Data only: :meth:`lwm2m_core.model.ObjectModelRepository.default` loads every file here.
The standard objects follow the OMA registry; our own (26241-26244) and the conventions
they share are described in ``docs/objects.md``.
"""
