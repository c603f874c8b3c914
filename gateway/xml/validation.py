"""Which message is this, and does it match our schema?

``detect`` maps a root element to its ``MessageSpec``; ``schema_violations`` validates with
lxml (fast, shared compiled schema) and, only when that fails, turns libxml2's error log
into ``Violation``s a broker can act on: a clean path such as
``/CEB621Message/Inventory[1]/InventoryList[2]/gcode``, the line, a ``schema.*`` code, a
plain-English sentence, and the offending value (truncated).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import xmlschema
from lxml import etree

from gateway.domain.errors import UnknownMessageType, Violation
from schemas.registry import MessageSpec, all_specs, compile_schema, find_spec, schema_for

MAX_VALUE_CHARS = 100
MAX_VIOLATIONS = 200

# libxml2 error type name -> our code (facet and datatype errors on values).
_VALUE_CODES: dict[str, str] = {
    "SCHEMAV_CVC_LENGTH_VALID": "schema.length",
    "SCHEMAV_CVC_MAXLENGTH_VALID": "schema.max_length",
    "SCHEMAV_CVC_MINLENGTH_VALID": "schema.min_length",
    "SCHEMAV_CVC_TOTALDIGITS_VALID": "schema.decimal",
    "SCHEMAV_CVC_FRACTIONDIGITS_VALID": "schema.decimal",
    "SCHEMAV_CVC_PATTERN_VALID": "schema.pattern",
    "SCHEMAV_CVC_ENUMERATION_VALID": "schema.enumeration",
    "SCHEMAV_CVC_MININCLUSIVE_VALID": "schema.range",
    "SCHEMAV_CVC_MAXINCLUSIVE_VALID": "schema.range",
    "SCHEMAV_CVC_MINEXCLUSIVE_VALID": "schema.range",
    "SCHEMAV_CVC_MAXEXCLUSIVE_VALID": "schema.range",
}
_FIXED_PREFIX = "SCHEMAV_CVC_ELT_5_2_2"
_DATATYPE_PREFIX = "SCHEMAV_CVC_DATATYPE_VALID"
_SIMPLE_CONTENT = {
    "SCHEMAV_CVC_TYPE_3_1_2",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_1",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_2",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_3",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_4",
    "SCHEMAV_CVC_TYPE_3_1_1",
}

# A few well-known fields get a hint of what they hold.
_HINTS: dict[str, str] = {
    "gcode": "an HS code",
    "currency": "CNY",
    "guid": "a GUID",
    "appTime": "YYYYMMDDhhmmss",
    "declTime": "YYYYMMDD",
    "ieDate": "YYYYMMDD",
    "returnTime": "YYYYMMDDhhmmssSSS",
    "customsCode": "a customs code",
    "portCode": "a customs code",
    "preNo": "B + YYYYMMDD + 9 digits",
    "invtNo": "an inventory number",
    "payTime": "YYYYMMDDhhmmss",
    "logisticsTime": "YYYYMMDDhhmmss",
    "consigneeDistrict": "a 6-digit administrative area code",
    "buyerIdNumber": "an ID number",
    "payerIdNumber": "an ID number",
    "taxNo": "the tax bill number",
    "leaveTime": "YYYYMMDDhhmmss",
    "accountingDate": "YYYYMMDD",
    "opDate": "YYYYMMDD",
    "startTime": "YYYYMMDDhhmmss",
    "endTime": "YYYYMMDDhhmmss",
}

_SEGMENT = re.compile(r"^(?:(?P<prefix>[^:\[\]]+):)?(?P<name>[^:\[\]]+)(?:\[(?P<index>\d+)\])?$")
_QNAME = re.compile(r"\{([^}]*)\}([\w.\-]+)")
_QUOTED = re.compile(r"'([^']*)'")

_local = threading.local()


# --------------------------------------------------------------------------- detect


def detect(root: etree._Element) -> MessageSpec:
    """The spec of the message rooted at ``root``; refuse anything else before validation."""
    qname = etree.QName(root)
    spec = find_spec(qname.namespace, qname.localname)
    if spec is not None:
        return spec
    known = ", ".join(s.type for s in all_specs() if s.kind == "declaration")
    message = _unknown_root_message(qname, known)
    raise UnknownMessageType(
        message,
        violations=[
            Violation(
                "/",
                "message.unknown_type",
                message,
                line=root.sourceline,
                value=_clip(qname.localname),
            )
        ],
        extra={"known_types": [s.type for s in all_specs()]},
    )


def _unknown_root_message(qname: etree.QName, known: str) -> str:
    """Say why a root is refused: wrong namespace if the name is right, unknown otherwise."""
    name = _clip(qname.localname)
    same_name = [s for s in all_specs() if s.root == qname.localname]
    if same_name:
        expected = same_name[0].namespace
        got = f"namespace {_clip(qname.namespace)!r}" if qname.namespace else "no namespace"
        return (
            f"The root element {name} is in {got}; it must be in namespace "
            f"{expected!r}. Known message types: {known}."
        )
    where = f" (namespace {_clip(qname.namespace)!r})" if qname.namespace else ""
    return f"The root element {name}{where} is not a known message. Declarable types: {known}."


# ------------------------------------------------------------------------ validate


def schema_violations(root: etree._Element, spec: MessageSpec) -> list[Violation]:
    """Validate against our schema; [] when valid, else every error as a ``Violation``."""
    if schema_for(spec).validate(root):
        return []
    errors = _error_entries(root, spec)
    shown = errors[: MAX_VIOLATIONS * 2]  # bound the work a hostile message can cause
    violations = _dedupe(v for e in shown if (v := _violation(root, spec, e)) is not None)
    if not violations:  # the shared validator said no; never report "invalid" with no reason
        violations = [Violation("/", "schema.other", "The message does not match its schema.")]
    hidden = len(violations) - MAX_VIOLATIONS + len(errors) - len(shown)
    if hidden > 0:
        violations = violations[:MAX_VIOLATIONS]
        violations.append(
            Violation(
                "/", "schema.truncated", f"{hidden} more schema errors were found but not listed."
            )
        )
    return violations


def _error_entries(root: etree._Element, spec: MessageSpec) -> list[etree._LogEntry]:
    """Re-validate on this thread's own schema instance: lxml keeps the error log on it."""
    cache: dict[str, etree.XMLSchema] = getattr(_local, "schemas", None) or {}
    _local.schemas = cache
    schema = cache.get(spec.type)
    if schema is None:
        schema = cache[spec.type] = compile_schema(spec)
    schema.validate(root)
    return list(schema.error_log)


def _dedupe(violations: Iterable[Violation]) -> list[Violation]:
    """Drop repeats and a generic datatype error that follows a facet error on one field."""
    out: list[Violation] = []
    seen: set[tuple[str, str]] = set()
    reported_paths: set[str] = set()
    for v in violations:
        if (v.path, v.code) in seen:
            continue
        if v.code in {"schema.datatype", "schema.decimal"} and v.path in reported_paths:
            continue
        seen.add((v.path, v.code))
        reported_paths.add(v.path)
        out.append(v)
    return out


@dataclass(frozen=True)
class _Where:
    """The element an error is about, the attribute if any, and their clean path."""

    node: etree._Element | None
    path: str
    attribute: str | None
    line: int | None


def _violation(root: etree._Element, spec: MessageSpec, e: etree._LogEntry) -> Violation | None:
    """Translate one libxml2 error entry into a ``Violation``."""
    node = _resolve(root, e.path or "")
    attribute = _attribute_of(e.message)
    path = _clean_path(node, spec) if node is not None else _strip_prefixes(e.path or "/")
    line = (node.sourceline if node is not None else None) or (e.line or None)
    where = _Where(node, path + (f"/@{attribute}" if attribute else ""), attribute, line)
    kind = e.type_name
    if kind == "SCHEMAV_ELEMENT_CONTENT":
        return _content_violation(where, e.message, spec)
    if kind in _VALUE_CODES or kind.startswith((_FIXED_PREFIX, _DATATYPE_PREFIX)):
        return _value_violation(where, kind, e.message)
    if kind == "SCHEMAV_CVC_COMPLEX_TYPE_4":
        return _attribute_violation(where, e.message, missing=True)
    if kind.startswith("SCHEMAV_CVC_COMPLEX_TYPE_3_2"):
        return _attribute_violation(where, e.message, missing=False)
    if kind in _SIMPLE_CONTENT:
        return Violation(
            where.path,
            "schema.unexpected_content",
            f"{_name(where)} must contain only text (or only elements); "
            f"it has content its type does not allow.",
            where.line,
        )
    if kind == "SCHEMAV_CVC_ELT_1":
        return Violation(
            "/",
            "schema.unknown_root",
            "The root element is not declared by this message's schema.",
            where.line,
        )
    return Violation(where.path, "schema.other", _plain(e.message), where.line)


# ---------------------------------------------------------------- content errors


def _content_violation(where: _Where, message: str, spec: MessageSpec) -> Violation:
    """Missing, unexpected, repeated or out-of-order child elements."""
    expected = (
        [(ns, local) for ns, local in _QNAME.findall(message.split("Expected", 1)[-1])]
        if "Expected" in message
        else []
    )
    node = where.node
    if "Missing child element" in message:
        if node is not None and _only_repeats(node, expected):
            expected = _xmlschema_expected(node, spec) or expected
        return _missing_violation(where, _required_first(node, expected, spec), inside=True)
    if node is None:
        return Violation(where.path, "schema.unexpected_element", _plain(message), where.line)
    qname = etree.QName(node)
    wanted_names = [local for _, local in expected]
    wanted_ns = [ns for ns, local in expected if local == qname.localname]
    if wanted_ns and (qname.namespace or "") not in wanted_ns:
        got = f"namespace {_clip(qname.namespace)!r}" if qname.namespace else "no namespace"
        return Violation(
            where.path,
            "schema.wrong_namespace",
            f"{qname.localname} is in {got}; it must be in namespace {wanted_ns[0]!r}.",
            where.line,
        )
    earlier = _same_name_before(node)
    repeated = earlier and qname.localname not in wanted_names
    if repeated and expected and not _required_children(node.getparent(), spec) & set(wanted_names):
        # Only optional elements could follow: the real problem is the repetition.
        expected = []
    if expected and not _any_later(node, expected):
        return _missing_violation(
            where, _required_first(node.getparent(), expected, spec), inside=False
        )
    if earlier and qname.localname not in wanted_names:
        return Violation(
            where.path,
            "schema.max_occurs",
            f"{qname.localname} appears too many times in {_parent_name(node)}: "
            f"at most {earlier} allowed here.",
            where.line,
        )
    hint = (
        f"; expected {_names(expected)} at this position"
        if expected
        else "; nothing more is allowed here"
    )
    return Violation(
        where.path,
        "schema.unexpected_element",
        f"{qname.localname} is not expected in {_parent_name(node)}{hint}.",
        where.line,
    )


def _missing_violation(
    where: _Where, expected: list[tuple[str, str]], *, inside: bool
) -> Violation:
    """A required child is absent: point at where it should be."""
    parent_path = where.path if inside else where.path.rsplit("/", 1)[0] or "/"
    parent = where.node if inside else (where.node.getparent() if where.node is not None else None)
    parent_name = etree.QName(parent).localname if parent is not None else "the message"
    if len(expected) == 1:
        name = expected[0][1]
        after = "" if inside else f" (before {etree.QName(where.node).localname})"
        return Violation(
            f"{parent_path}/{name}",
            "schema.missing_element",
            f"{parent_name} is missing the required element {name}{after}.",
            where.line,
        )
    return Violation(
        parent_path,
        "schema.missing_element",
        f"{parent_name} is missing a required element: expected one of {_names(expected)}.",
        where.line,
    )


def _required_first(
    parent: etree._Element | None, expected: list[tuple[str, str]], spec: MessageSpec
) -> list[tuple[str, str]]:
    """libxml2 lists optional candidates before the missing required one ("expected one of
    batchNumbers, consignee"); keep only the required ones when the schema says which."""
    if parent is None or len(expected) < 2:
        return expected
    required = _required_children(parent, spec)
    kept = [e for e in expected if e[1] in required]
    return kept or expected


def _required_children(node: etree._Element, spec: MessageSpec) -> set[str]:
    """Names of the children the schema requires under ``node`` (failure path only)."""
    steps = [etree.QName(a) for a in reversed([node, *node.iterancestors()])]
    if any(q.namespace != spec.namespace for q in steps):
        return set()
    path = "/".join(f"ceb:{q.localname}" for q in steps)
    try:
        xsd = _xmlschema_for(spec).find(path, namespaces={"ceb": spec.namespace})
        content = xsd.type.content if xsd is not None else None
        return (
            {c.local_name for c in content.iter_elements() if c.min_occurs >= 1}
            if content is not None
            else set()
        )
    except (AttributeError, xmlschema.XMLSchemaException):
        return set()


def _only_repeats(node: etree._Element, expected: list[tuple[str, str]]) -> bool:
    """libxml2 names only a repeatable child already present (e.g. Inventory when
    BaseTransfer is missing); then it does not say what is really missing."""
    present = {c.tag for c in node if isinstance(c.tag, str)}
    return bool(expected) and all(
        etree.QName(ns or None, local).text in present for ns, local in expected
    )


@functools.cache
def _xmlschema_for(spec: MessageSpec) -> xmlschema.XMLSchema:
    """The slow, precise validator, compiled only if a message ever needs it."""
    return xmlschema.XMLSchema(str(spec.xsd))


def _xmlschema_expected(node: etree._Element, spec: MessageSpec) -> list[tuple[str, str]]:
    """Ask xmlschema (failure path only) which children ``node`` still needs."""
    root = node.getroottree().getroot()
    for error in _xmlschema_for(spec).iter_errors(root):
        if error.elem is node and getattr(error, "expected", None):
            names = [etree.QName(x.name) for x in error.expected if getattr(x, "name", None)]
            return [(q.namespace or "", q.localname) for q in names]
    return []


def _any_later(node: etree._Element, expected: list[tuple[str, str]]) -> bool:
    """Whether an expected element appears at or after ``node`` (then it is misplaced)."""
    wanted = {etree.QName(ns or None, local).text for ns, local in expected}
    sibling: etree._Element | None = node
    while sibling is not None:
        if isinstance(sibling.tag, str) and sibling.tag in wanted:
            return True
        sibling = sibling.getnext()
    return False


def _same_name_before(node: etree._Element) -> int:
    """How many earlier siblings share this element's name."""
    return sum(1 for s in node.itersiblings(preceding=True) if s.tag == node.tag)


def _names(expected: list[tuple[str, str]]) -> str:
    """A readable list of expected local names."""
    return ", ".join(local for _, local in expected)


def _parent_name(node: etree._Element) -> str:
    """Local name of the parent, or 'the document' at the root."""
    parent = node.getparent()
    return etree.QName(parent).localname if parent is not None else "the document"


# ------------------------------------------------------------------ value errors


def _value_violation(where: _Where, kind: str, message: str) -> Violation:
    """A value breaks a length, digits, fixed-value or datatype rule."""
    value = _value(where)
    name = _name(where)
    hint = f" ({_HINTS[name]})" if name in _HINTS else ""
    limit = _last_quoted(message)
    shown = _clip(value) if value is not None else None
    got = f"; got {len(value)}" if value is not None else ""
    if kind.startswith(_FIXED_PREFIX):
        code, text = "schema.fixed_value", f"{name} must be exactly {limit}{hint}; got {shown!r}"
    elif kind == "SCHEMAV_CVC_LENGTH_VALID":
        unit = "character" if limit == "1" else "characters"
        code, text = "schema.length", f"{name} must be exactly {limit} {unit}{hint}{got}"
    elif kind == "SCHEMAV_CVC_MAXLENGTH_VALID":
        code, text = "schema.max_length", f"{name} must be at most {limit} characters{hint}{got}"
    elif kind == "SCHEMAV_CVC_MINLENGTH_VALID":
        code = "schema.min_length"
        text = (
            f"{name} must not be empty{hint}"
            if not value
            else f"{name} must be at least {limit} characters{hint}{got}"
        )
    elif kind == "SCHEMAV_CVC_TOTALDIGITS_VALID":
        code, text = "schema.decimal", f"{name} may have at most {limit} digits; got {shown!r}"
    elif kind == "SCHEMAV_CVC_FRACTIONDIGITS_VALID":
        code = "schema.decimal"
        text = f"{name} may have at most {limit} digits after the decimal point; got {shown!r}"
    elif kind.startswith(_DATATYPE_PREFIX):
        code, text = _datatype_text(name, message, shown)
    else:
        code, text = _VALUE_CODES.get(kind, "schema.other"), f"{name}: {_plain(message)}"
    return Violation(where.path, code, text + ".", where.line, shown)


def _datatype_text(name: str, message: str, shown: str | None) -> tuple[str, str]:
    """Say which kind of value was expected when the text is not of the field's type."""
    lowered = message.lower()
    if "decimal" in lowered:
        return "schema.decimal", f"{name} must be a decimal number; got {shown!r}"
    if "'xs:int" in lowered or "integer" in lowered or "int9" in lowered:
        return "schema.integer", f"{name} must be a whole number; got {shown!r}"
    return "schema.datatype", f"{name} has a value its type does not allow; got {shown!r}"


def _attribute_violation(where: _Where, message: str, *, missing: bool) -> Violation:
    """A required attribute is absent, or an attribute is not allowed."""
    quoted = _QUOTED.findall(message)
    attr = where.attribute or (quoted[-1] if quoted else "?")
    owner = etree.QName(where.node).localname if where.node is not None else "element"
    base = where.path.split("/@", 1)[0]
    if missing:
        return Violation(
            f"{base}/@{attr}",
            "schema.missing_attribute",
            f"{owner} must have the attribute {attr}.",
            where.line,
        )
    return Violation(
        f"{base}/@{attr}",
        "schema.unexpected_attribute",
        f"{owner} does not allow the attribute {attr}.",
        where.line,
    )


# ------------------------------------------------------------------------- paths


def _resolve(root: etree._Element, raw: str) -> etree._Element | None:
    """Find the element libxml2's path names (``/p:a/p:b[2]`` or ``/*/*[3]``)."""
    segments = [s for s in raw.split("/") if s]
    if not segments:
        return None
    node: etree._Element | None = root if _matches(root, segments[0]) else None
    for segment in segments[1:]:
        if node is None:
            return None
        node = _child(node, segment)
    return node


def _matches(node: etree._Element, segment: str) -> bool:
    """Whether ``node`` fits a path segment's prefix and name."""
    m = _SEGMENT.match(segment)
    if m is None:
        return False
    if m["name"] == "*":
        return True
    return etree.QName(node).localname == m["name"] and (node.prefix or None) == m["prefix"]


def _child(node: etree._Element, segment: str) -> etree._Element | None:
    """The child a path segment selects (1-based index among matching siblings)."""
    m = _SEGMENT.match(segment)
    if m is None:
        return None
    candidates = [c for c in node if isinstance(c.tag, str) and _matches(c, segment)]
    index = int(m["index"] or 1)
    return candidates[index - 1] if 0 < index <= len(candidates) else None


def _clean_path(node: etree._Element, spec: MessageSpec) -> str:
    """``/CEB621Message/Inventory[1]/InventoryList[2]/gcode``: local names, 1-based indexes."""
    parts: list[str] = []
    current: etree._Element | None = node
    while current is not None:
        parts.append(_step(current, spec))
        current = current.getparent()
    return "/" + "/".join(reversed(parts))


def _step(node: etree._Element, spec: MessageSpec) -> str:
    """One path step; documents and their lines always carry an index, repeats too."""
    name = etree.QName(node).localname
    parent = node.getparent()
    if parent is None:
        return name
    same = [c for c in parent if c.tag == node.tag]
    always = name == spec.document or _is_document_line(node, spec)
    if len(same) > 1 or always:
        return f"{name}[{same.index(node) + 1}]"
    return name


def _is_document_line(node: etree._Element, spec: MessageSpec) -> bool:
    """A line of a document with a head, e.g. InventoryList under /CEB621Message/Inventory."""
    parent = node.getparent()
    if spec.head is None or parent is None or etree.QName(node).localname == spec.head:
        return False
    grandparent = parent.getparent()
    return (
        etree.QName(parent).localname == spec.document
        and grandparent is not None
        and grandparent.getparent() is None
    )


def _strip_prefixes(raw: str) -> str:
    """Fallback when the node cannot be found: drop namespace prefixes from the raw path."""
    return re.sub(r"(?<=/)[^/:\[]+:", "", raw) or "/"


# ----------------------------------------------------------------------- helpers


def _attribute_of(message: str) -> str | None:
    """The attribute an error is about, from "Element '...', attribute 'x': ..."."""
    m = re.search(r"^Element '[^']*', attribute '([^']+)'", message)
    return m.group(1) if m else None


def _value(where: _Where) -> str | None:
    """The offending text or attribute value."""
    if where.node is None:
        return None
    if where.attribute:
        return where.node.get(where.attribute)
    return where.node.text or ""


def _name(where: _Where) -> str:
    """The field's name for messages: the attribute or the element's local name."""
    if where.attribute:
        return where.attribute
    if where.node is not None:
        return etree.QName(where.node).localname
    return where.path.rsplit("/", 1)[-1]


def _last_quoted(message: str) -> str:
    """The limit libxml2 quotes last, e.g. the 10 in "allowed length of '10'"."""
    quoted = _QUOTED.findall(message)
    return quoted[-1] if quoted else "?"


def _plain(message: str) -> str:
    """libxml2's message with Clark names shortened to local names, clipped."""
    return _clip(_QNAME.sub(lambda m: m.group(2), message.strip()), 300) or "schema error"


def _clip(value: str | None, limit: int = MAX_VALUE_CHARS) -> str:
    """Never echo more than ``limit`` characters of user input."""
    if value is None:
        return ""
    return value if len(value) <= limit else value[: limit - 3] + "..."
