"""The one hardened XML parser: every inbound byte goes through ``parse_xml``.

No DTD is loaded, no entity is expanded, nothing is fetched from the network, and any
DOCTYPE, processing instruction or over-deep nesting is refused with a named reason, so a
hostile document costs at most its own size to reject.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from gateway.domain.errors import ForbiddenXml, MalformedXml, PayloadTooLarge, Violation


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what the parser will look at; defaults suit CEB messages of 100 documents."""

    max_bytes: int = 5 * 1024 * 1024
    max_depth: int = 32


DEFAULT_LIMITS = ParseLimits()


class _NoExternalResources(etree.Resolver):  # type: ignore[misc]
    """Answer every external lookup (DTD, parameter entity) with nothing: libxml2 would
    otherwise open local files even with load_dtd=False and resolve_entities=False."""

    def resolve(self, url: str, pubid: str, context: object) -> object:
        return self.resolve_string("", context)


def _make_parser() -> etree.XMLParser:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )
    parser.resolvers.add(_NoExternalResources())
    return parser


def parse_xml(data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> etree._Element:
    """Parse untrusted bytes into an element tree, or raise a ``GatewayError`` saying why."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"The body is {len(data)} bytes; the limit is {limits.max_bytes} bytes.",
            violations=[Violation("/", "xml.too_large", "document exceeds the size limit")],
        )
    if not data.strip():
        raise MalformedXml(
            "The body is empty.", violations=[Violation("/", "xml.empty", "no XML document")]
        )
    # A fresh parser per call: lxml parsers are not thread-safe and cost microseconds.
    try:
        root = etree.fromstring(data, parser=_make_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        msg = str(exc.msg or exc)
        # NULs where text should be: UTF-16 (or another wide encoding) read as UTF-8.
        wrong_width = "Char 0x0 out of allowed range" in msg and b"\x00" in data[:4]
        code = "xml.encoding" if "encoding" in msg.lower() or wrong_width else "xml.malformed"
        if "entity reference loop" in msg or "amplification" in msg:
            raise ForbiddenXml(
                "DOCTYPE declarations are not accepted (they enable entity attacks).",
                violations=[Violation("/", "xml.doctype_forbidden", msg, line=line)],
            ) from None
        if "Excessive depth" in msg:
            raise ForbiddenXml(
                f"The document is nested deeper than {limits.max_depth} levels.",
                violations=[
                    Violation("/", "xml.too_deep", "nesting exceeds the depth limit", line=line)
                ],
            ) from None
        raise MalformedXml(
            f"The body is not well-formed XML: {msg}",
            violations=[Violation("/", code, msg, line=line)],
        ) from None
    except ValueError as exc:  # e.g. unicode strings with an encoding declaration
        raise MalformedXml(
            f"The body could not be decoded: {exc}",
            violations=[Violation("/", "xml.encoding", str(exc))],
        ) from None
    _refuse_forbidden_constructs(root, limits)
    return root


def _refuse_forbidden_constructs(root: etree._Element, limits: ParseLimits) -> None:
    tree = root.getroottree()
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise ForbiddenXml(
            "DOCTYPE declarations are not accepted (they enable entity attacks).",
            violations=[Violation("/", "xml.doctype_forbidden", "a DOCTYPE is present", line=1)],
        )
    for sibling in [*root.itersiblings(preceding=True), *root.itersiblings()]:
        if isinstance(sibling, etree._ProcessingInstruction):
            raise ForbiddenXml(
                "Processing instructions are not accepted.",
                violations=[
                    Violation(
                        "/",
                        "xml.pi_forbidden",
                        f"processing instruction <?{sibling.target}?>",
                        line=sibling.sourceline,
                    )
                ],
            )
    # XPath in C: is there any element deeper than the limit?
    if root.xpath(f"boolean(/*{'/*' * limits.max_depth})"):
        raise ForbiddenXml(
            f"The document is nested deeper than {limits.max_depth} levels.",
            violations=[Violation("/", "xml.too_deep", "nesting exceeds the depth limit")],
        )
    for node in root.iter(etree.ProcessingInstruction, etree.Entity):
        kind = (
            "processing instruction"
            if isinstance(node, etree._ProcessingInstruction)
            else "entity reference"
        )
        raise ForbiddenXml(
            f"A {kind} was found inside the document; it is not accepted.",
            violations=[
                Violation(
                    "/",
                    "xml.pi_forbidden" if "processing" in kind else "xml.entity_forbidden",
                    kind,
                    line=node.sourceline,
                )
            ],
        )
