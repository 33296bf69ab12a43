"""PosFleet's LwM2M core: paths, the value tree, the object model and content-format codecs.

Shared by the terminal agent and the DM server. Pure data and pure functions: nothing here
does I/O except :class:`~lwm2m_core.model.ObjectModelRepository` reading definition files.
"""

from lwm2m_core.errors import CodecError, LwM2MError, ModelError, PathError
from lwm2m_core.path import LwM2mPath

__all__ = ["CodecError", "LwM2MError", "LwM2mPath", "ModelError", "PathError"]
