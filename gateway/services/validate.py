"""Validation, all three layers, reported at once: the same answer for /validate, the CLI
and a submission (which refuses exactly what this reports).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field, replace

from lxml import etree

from gateway.domain.documents import (
    BUSINESS_KEY_FIELDS,
    DocumentKeys,
    duplicate_business_keys,
    duplicate_guids,
)
from gateway.domain.errors import (
    BusinessRuleViolation,
    GatewayError,
    MalformedRequest,
    PayloadTooLarge,
    SchemaInvalid,
    UnsupportedMediaType,
    Violation,
)
from gateway.xml.documents import (
    DocumentElements,
    document_elements,
    extract_documents,
    rule_violations,
)
from gateway.xml.json_codec import json_to_xml, parse_json
from gateway.xml.parsing import ParseLimits, parse_xml
from gateway.xml.validation import detect, schema_violations
from schemas.registry import MessageSpec

MAX_ZIP_MEMBERS = 1000
XML_MEDIA_TYPES = {"application/xml", "text/xml"}
JSON_MEDIA_TYPES = {"application/json"}


def body_format(content_type: str) -> str:
    """'xml' or 'json' from a Content-Type, or UnsupportedMediaType."""
    media = content_type.split(";")[0].strip().lower()
    if media in XML_MEDIA_TYPES or media.endswith("+xml"):
        return "xml"
    if media in JSON_MEDIA_TYPES or media.endswith("+json"):
        return "json"
    raise UnsupportedMediaType(
        f"Content-Type {media or '(none)'} is not accepted; send application/xml (a CEB "
        "message) or application/json (the same message as JSON).",
        violations=[
            Violation("/", "media_type.unsupported", "use application/xml or application/json")
        ],
    )


def _without_lines(violations: list[Violation]) -> list[Violation]:
    return [replace(v, line=None) for v in violations]


def check_body(body: bytes, fmt: str, limits: ParseLimits) -> CheckedMessage:
    """Like check_message, for XML or JSON bodies (JSON errors carry paths, no lines)."""
    if fmt == "xml":
        return check_message(body, limits)
    if len(body) > limits.max_bytes:
        raise PayloadTooLarge(
            f"The body is {len(body)} bytes; the limit is {limits.max_bytes}.",
            violations=[Violation("/", "json.too_large", "document exceeds the size limit")],
        )
    try:
        checked = check_message(json_to_xml(parse_json(body)), limits)
    except GatewayError as exc:
        exc.violations = _without_lines(exc.violations)
        raise
    return replace(
        checked, schema=_without_lines(checked.schema), rules=_without_lines(checked.rules)
    )


@dataclass(frozen=True)
class CheckedMessage:
    """A message that parsed and was recognised, with everything wrong with it."""

    root: etree._Element
    spec: MessageSpec
    documents: list[DocumentKeys]
    schema: list[Violation]
    rules: list[Violation]
    elements: list[DocumentElements]  # each document's elements and plain view, read once

    @property
    def violations(self) -> list[Violation]:
        return [*self.schema, *self.rules]

    def raise_if_invalid(self) -> None:
        """Refuse with every violation: a schema problem first, else a business rule."""
        if self.schema:
            raise SchemaInvalid(
                f"The {self.spec.type} message has {len(self.schema)} schema violation(s)"
                + (f" and {len(self.rules)} business-rule violation(s)." if self.rules else "."),
                violations=self.violations,
            )
        if self.rules:
            raise BusinessRuleViolation(
                f"The {self.spec.type} message breaks {len(self.rules)} business rule(s).",
                violations=self.rules,
            )


def _duplicate_guids(spec: MessageSpec, docs: list[DocumentKeys]) -> list[Violation]:
    head = f"/{spec.head}" if spec.head else ""
    return [
        Violation(
            f"/{spec.root}/{spec.document}[{later.position}]{head}/guid",
            "rule.document.duplicate_guid",
            f"guid {later.guid} is already used by {spec.document}[{first.position}] in this "
            "message; every document needs its own guid.",
            value=later.guid,
            message_zh="同一报文中每份单证的guid必须唯一。",
        )
        for first, later in duplicate_guids(docs)
    ]


def _duplicate_keys(spec: MessageSpec, docs: list[DocumentKeys]) -> list[Violation]:
    head = f"/{spec.head}" if spec.head else ""
    field = BUSINESS_KEY_FIELDS.get(spec.type, ("guid",))[-1]
    return [
        Violation(
            f"/{spec.root}/{spec.document}[{later.position}]{head}/{field}",
            "rule.document.duplicate_business_key",
            f"{field} {(later.business_key or '').split('|')[-1]} is already declared by "
            f"{spec.document}[{first.position}] in this message; a document is declared once.",
            value=(later.business_key or "").split("|")[-1],
            message_zh="同一报文中不能重复申报同一单证。",
        )
        for first, later in duplicate_business_keys(docs)
    ]


def check_message(body: bytes, limits: ParseLimits) -> CheckedMessage:
    """Parse (hardened), detect the type, validate against the schema and the rules."""
    root = parse_xml(body, limits)
    spec = detect(root)
    schema = schema_violations(root, spec)
    documents = extract_documents(root, spec) if spec.document else []
    elements = document_elements(root, spec) if spec.document else []
    rules = []
    if spec.kind == "declaration":
        # A field the schema already refused is not reported twice.
        refused = {v.path for v in schema}
        rules = [
            v
            for v in _duplicate_guids(spec, documents)
            + _duplicate_keys(spec, documents)
            + rule_violations(spec, elements)
            if v.path not in refused
        ]
    return CheckedMessage(root, spec, documents, schema, rules, elements)


@dataclass
class FileReport:
    """The validation answer for one file: valid, or the problem that refuses it."""

    name: str
    valid: bool
    message_type: str | None = None
    documents: int = 0
    status: int = 200
    title: str = "Valid"
    errors: list[Violation] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.name,
            "valid": self.valid,
            "type": self.message_type,
            "documents": self.documents,
            "status": self.status,
            "title": self.title,
            "errors": [e.as_dict() for e in self.errors],
        }


def validate_file(name: str, body: bytes, limits: ParseLimits, fmt: str = "xml") -> FileReport:
    """Validate one message; never raises for bad input, reports it instead."""
    checked = None
    try:
        checked = check_body(body, fmt, limits)
        checked.raise_if_invalid()
    except GatewayError as exc:
        return FileReport(
            name,
            False,
            checked.spec.type if checked else None,
            len(checked.documents) if checked else 0,
            exc.status,
            exc.title,
            exc.violations,
        )
    return FileReport(name, True, checked.spec.type, len(checked.documents))


def _format_of(name: str) -> str:
    return "json" if name.lower().endswith(".json") else "xml"


def validate_upload(
    name: str, body: bytes, limits: ParseLimits, fmt: str | None = None
) -> list[FileReport]:
    """A single XML/JSON file, or a ZIP of them (each member validated on its own)."""
    if not body.startswith(b"PK\x03\x04"):
        return [validate_file(name, body, limits, fmt or _format_of(name))]
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except zipfile.BadZipFile as exc:
        raise MalformedRequest(f"The ZIP archive cannot be read: {exc}") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise MalformedRequest(
            f"The ZIP holds {len(members)} files; the limit is {MAX_ZIP_MEMBERS}."
        )
    reports = []
    for member in members:
        if member.file_size > limits.max_bytes:
            reports.append(
                FileReport(
                    member.filename,
                    False,
                    status=413,
                    title="Payload too large",
                    errors=[
                        Violation(
                            "/",
                            "xml.too_large",
                            f"{member.file_size} bytes uncompressed; the limit "
                            f"is {limits.max_bytes}",
                        )
                    ],
                )
            )
            continue
        with archive.open(member) as fh:
            data = fh.read(limits.max_bytes + 1)  # bounded even if the header lies
        reports.append(validate_file(member.filename, data, limits, _format_of(member.filename)))
    return reports
