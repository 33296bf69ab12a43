"""CoRE link format (RFC 6690) with the LwM2M attributes (TS Core §5.1.2, §6.1.7.4).

Registration payloads (``</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>``) and Discover answers
(``</3/0/7>;dim=2;pmin=10``) are lists of links: a target in angle brackets, then
parameters, each ``name``, ``name=token`` or ``name="quoted string"``. The LwM2M
attributes get Python types (pmin 10 -> ``int``, gt 2.5 -> ``float``, obs -> ``True``);
other parameters stay text. Malformed text raises :class:`CodecError` naming the offset.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from lwm2m_core.errors import CodecError, LwM2MError
from lwm2m_core.numbers import ContentFormat
from lwm2m_core.path import LwM2mPath

ParamValue = str | int | float | bool | tuple[int, ...]

#: The registration's resource type (TS Core §6.2.1).
LWM2M_RESOURCE_TYPE = "oma.lwm2m"
#: Longest link-format document parsed; a registration of a big client is a few kB.
MAX_LINK_FORMAT_BYTES = 64 * 1024
#: Most links one document may hold.
MAX_LINKS = 4096

#: LwM2M attributes with integer values (seconds, ids, counts).
INTEGER_PARAMS = frozenset({"pmin", "pmax", "epmin", "epmax", "dim", "ssid"})
#: LwM2M attributes with decimal values (thresholds and step).
FLOAT_PARAMS = frozenset({"gt", "lt", "st"})
#: Attributes that are text.
TEXT_PARAMS = frozenset({"ver", "uri", "rt", "lwm2m", "if", "anchor", "rel", "title"})
#: Attributes that are flags without value.
FLAG_PARAMS = frozenset({"obs"})
#: Content-format list (RFC 7252 §7.2.1: one number, or several in quotes).
CONTENT_FORMAT_PARAM = "ct"
_MAX_DIM = 255
_MAX_SSID = 65535

_TOKEN = re.compile(r"[!#$%&'()*+\-./0-9:<=>?@A-Z\[\]^_`a-z{|}~]+")
_PARAM_NAME = re.compile(r"[A-Za-z0-9!#$&+\-.^_`|~*]+")
_DECIMAL = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?")
_UNSIGNED = re.compile(r"[0-9]{1,10}")
_VERSION = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}")


@dataclass(frozen=True, slots=True)
class Link:
    """One link: ``target`` (``/3/0``) and its parameters in document order."""

    target: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checked = {name: check_param(name, value) for name, value in self.params.items()}
        object.__setattr__(self, "params", MappingProxyType(checked))

    @property
    def path(self) -> LwM2mPath:
        """The target as an LwM2M path; CodecError if it is not one."""
        try:
            return LwM2mPath.parse(self.target)
        except LwM2MError as exc:
            raise CodecError(
                f"link target <{self.target}> is not an LwM2M path: {exc.message}"
            ) from None

    def __str__(self) -> str:
        return format_link(self)

    def __hash__(self) -> int:
        return hash((self.target, tuple(self.params.items())))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Link):
            return NotImplemented
        return self.target == other.target and dict(self.params) == dict(other.params)


def check_param(name: str, value: object) -> ParamValue:
    """Check one parameter's name and Python value; returns it normalised."""
    if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
        raise CodecError(f"link parameter name {name!r:.40} is not a token")
    if name in FLAG_PARAMS:
        if value is not True:
            raise CodecError(f"link parameter {name} is a flag and takes no value")
        return True
    if name in INTEGER_PARAMS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CodecError(
                f"link parameter {name} must be a non-negative integer, not {value!r:.40}"
            )
        if name == "dim" and value > _MAX_DIM:
            raise CodecError(f"link parameter dim {value} exceeds {_MAX_DIM}")
        if name == "ssid" and value > _MAX_SSID:
            raise CodecError(f"link parameter ssid {value} exceeds {_MAX_SSID}")
        return value
    if name in FLOAT_PARAMS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CodecError(f"link parameter {name} must be a number, not {value!r:.40}")
        try:
            number = float(value)
        except OverflowError:
            raise CodecError(f"link parameter {name} is out of range") from None
        if not math.isfinite(number):
            raise CodecError(f"link parameter {name} must be finite")
        return number
    if name == CONTENT_FORMAT_PARAM:
        formats = value if isinstance(value, tuple) else (value,)
        if not formats or any(
            isinstance(f, bool) or not isinstance(f, int) or not 0 <= f <= 0xFFFF for f in formats
        ):
            raise CodecError(f"link parameter ct must be content-format numbers, not {value!r:.40}")
        return value if isinstance(value, tuple) else formats[0]
    if value is True:
        return True
    if not isinstance(value, str):
        raise CodecError(f"link parameter {name} must be text, not {type(value).__name__}")
    if name == "ver" and not _VERSION.fullmatch(value):
        raise CodecError(f"link parameter ver {value!r:.40} is not MAJOR.MINOR")
    return value


def _typed_param(name: str, text: str | None, offset: int) -> ParamValue:
    def bad(expected: str) -> CodecError:
        return CodecError(f"link format at {offset}: {name}={text!r:.40} is not {expected}")

    if text is None:
        if name in FLAG_PARAMS or name not in INTEGER_PARAMS | FLOAT_PARAMS | {"ct", "ver"}:
            return True
        raise bad("given a value")
    if name in FLAG_PARAMS:
        raise bad("a flag (obs takes no value)")
    if name in INTEGER_PARAMS:
        if not _UNSIGNED.fullmatch(text):
            raise bad("a non-negative integer")
        return check_param(name, int(text))
    if name in FLOAT_PARAMS:
        if not _DECIMAL.fullmatch(text):
            raise bad("a decimal number")
        return check_param(name, float(text))
    if name == CONTENT_FORMAT_PARAM:
        parts = text.split(" ")
        if not all(_UNSIGNED.fullmatch(part) for part in parts):
            raise bad("a content-format number or a quoted list of them")
        numbers = tuple(int(part) for part in parts)
        return check_param(name, numbers if len(numbers) > 1 else numbers[0])
    return check_param(name, text)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> CodecError:
        return CodecError(f"link format at {self.pos}: {what}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.error(f"expected {char!r}, found {found}")
        self.pos += 1

    def target(self) -> str:
        self.expect("<")
        end = self.text.find(">", self.pos)
        if end < 0:
            raise self.error("'<' without closing '>'")
        target = self.text[self.pos : end]
        if any(c in target for c in '<" \t\r\n'):
            raise self.error(f"link target <{target[:40]}> contains a character not allowed")
        self.pos = end + 1
        return target

    def quoted(self) -> str:
        self.expect('"')
        out: list[str] = []
        while True:
            char = self.peek()
            if not char:
                raise self.error("quoted string without closing quote")
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char == "\\":
                escaped = self.peek()
                if not escaped:
                    raise self.error("quoted string ends in a backslash")
                self.pos += 1
                out.append(escaped)
            else:
                out.append(char)

    def match(self, pattern: re.Pattern[str]) -> str:
        found = pattern.match(self.text, self.pos)
        if not found:
            raise self.error(f"unexpected {self.peek()!r}")
        self.pos = found.end()
        return found.group(0)


def parse_links(text: str | bytes) -> list[Link]:
    """Parse a link-format document (RFC 6690 §2). Empty text is an empty list."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        if len(text) > MAX_LINK_FORMAT_BYTES:
            raise CodecError(f"link format of {len(text)} bytes exceeds {MAX_LINK_FORMAT_BYTES}")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(f"link format: invalid UTF-8 at byte {exc.start}") from None
    if not isinstance(text, str):
        raise CodecError(f"link format must be text, not {type(text).__name__}")
    if len(text) > MAX_LINK_FORMAT_BYTES:
        raise CodecError(f"link format of {len(text)} characters exceeds {MAX_LINK_FORMAT_BYTES}")
    scanner = _Scanner(text)
    links: list[Link] = []
    scanner.skip_space()
    if not scanner.peek():
        return links
    while True:
        if len(links) >= MAX_LINKS:
            raise scanner.error(f"more than {MAX_LINKS} links")
        scanner.skip_space()
        target = scanner.target()
        params: dict[str, ParamValue] = {}
        scanner.skip_space()
        while scanner.peek() == ";":
            scanner.pos += 1
            scanner.skip_space()
            start = scanner.pos
            name = scanner.match(_PARAM_NAME)
            value: str | None = None
            if scanner.peek() == "=":
                scanner.pos += 1
                value = scanner.quoted() if scanner.peek() == '"' else scanner.match(_TOKEN)
            if name in params:
                raise CodecError(f"link format at {start}: parameter {name} given twice")
            params[name] = _typed_param(name, value, start)
            scanner.skip_space()
        links.append(Link(target, params))
        if not scanner.peek():
            return links
        scanner.expect(",")
        scanner.skip_space()


def _format_param(name: str, value: ParamValue) -> str:
    if value is True:
        return name
    if isinstance(value, tuple):
        if len(value) == 1:
            return f"{name}={value[0]}"
        return f'{name}="{" ".join(str(v) for v in value)}"'
    if isinstance(value, float):
        text = repr(value)
        if "e" in text or "inf" in text or "nan" in text:
            text = f"{value:.17f}".rstrip("0").rstrip(".")
        return f"{name}={text}"
    if isinstance(value, int):
        return f"{name}={value}"
    if name == "ver" or (_TOKEN.fullmatch(value) and name not in ("rt", "uri", "if")):
        return f"{name}={value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"'


def format_link(link: Link) -> str:
    if any(c in link.target for c in '<>" \t\r\n'):
        raise CodecError(f"link target {link.target[:40]!r} contains a character not allowed")
    params = (";" + _format_param(name, value) for name, value in link.params.items())
    return "".join([f"<{link.target}>", *params])


def format_links(links: Iterable[Link]) -> str:
    return ",".join(format_link(link) for link in links)


# --- registration payloads ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistrationObjects:
    """What a Register or Update payload says about the client (TS Core §6.2.1).

    ``root`` is the alternate path (``/`` unless the client names another, e.g.
    ``/lwm2m``); ``content_formats`` are those of its ``ct`` attribute; ``objects`` maps each
    object id to its instance ids (empty if only the object is listed); ``versions`` the
    objects whose ``ver`` is given.
    """

    root: str = "/"
    content_formats: tuple[int, ...] = ()
    objects: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    versions: Mapping[int, str] = field(default_factory=dict)

    def supports(self, content_format: ContentFormat) -> bool:
        return int(content_format) in self.content_formats


def parse_registration(text: str | bytes) -> RegistrationObjects:
    """Objects, instances, versions and content formats from a registration payload."""
    if isinstance(text, str) and len(text) <= _CACHED_REGISTRATION_LENGTH:
        return _parse_registration_cached(text)
    return _parse_registration(text)


#: Terminals of one model send the same registration payload, thousands of times in a
#: registration storm; the parsed form is immutable, so it is parsed once and shared.
_CACHED_REGISTRATION_LENGTH = 4096


def _parse_registration(text: str | bytes) -> RegistrationObjects:
    links = parse_links(text)
    root = "/"
    content_formats: tuple[int, ...] = ()
    for link in links:
        if link.params.get("rt") == LWM2M_RESOURCE_TYPE:
            root = link.target.rstrip("/") or "/"
            ct = link.params.get(CONTENT_FORMAT_PARAM)
            if isinstance(ct, int):
                content_formats = (ct,)
            elif isinstance(ct, tuple):
                content_formats = ct
            break
    prefix = "" if root == "/" else root
    objects: dict[int, list[int]] = {}
    versions: dict[int, str] = {}
    for link in links:
        if link.params.get("rt") == LWM2M_RESOURCE_TYPE:
            continue
        target = link.target
        if prefix:
            if not target.startswith(prefix + "/"):
                raise CodecError(f"registration link <{target}> is outside the root {root}")
            target = target[len(prefix) :]
        path = Link(target).path
        if path.depth not in (1, 2):
            raise CodecError(f"registration link <{link.target}> must name an object or instance")
        assert path.object_id is not None
        instances = objects.setdefault(path.object_id, [])
        if path.object_instance_id is not None:
            if path.object_instance_id in instances:
                raise CodecError(f"registration lists <{link.target}> twice")
            instances.append(path.object_instance_id)
        version = link.params.get("ver")
        if isinstance(version, str):
            versions[path.object_id] = version
    return RegistrationObjects(
        root=root,
        content_formats=content_formats,
        objects=MappingProxyType(
            {oid: tuple(sorted(iids)) for oid, iids in sorted(objects.items())}
        ),
        versions=MappingProxyType(versions),
    )


_parse_registration_cached = functools.lru_cache(maxsize=256)(_parse_registration)


def format_registration(registration: RegistrationObjects) -> str:
    """The registration payload for ``registration`` (root link first, then objects)."""
    links: list[Link] = []
    root_params: dict[str, ParamValue] = {"rt": LWM2M_RESOURCE_TYPE}
    if registration.content_formats:
        formats = registration.content_formats
        root_params[CONTENT_FORMAT_PARAM] = formats if len(formats) > 1 else formats[0]
    if registration.root != "/" or registration.content_formats:
        links.append(Link(registration.root, root_params))
    prefix = "" if registration.root == "/" else registration.root.rstrip("/")
    for oid, instances in sorted(registration.objects.items()):
        version = registration.versions.get(oid)
        if version is not None or not instances:
            links.append(Link(f"{prefix}/{oid}", {"ver": version} if version else {}))
        links.extend(Link(f"{prefix}/{oid}/{iid}") for iid in instances)
    return format_links(links)


def iter_paths(links: Iterable[Link]) -> Iterator[tuple[LwM2mPath, Link]]:
    """Each link with its target as an LwM2M path (CodecError if one is not a path)."""
    for link in links:
        yield link.path, link
