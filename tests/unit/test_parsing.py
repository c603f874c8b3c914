"""The hardened XML parser against the hostile corpus in tests/data/hostile (RELIABILITY T3).

Corpus files may hold two placeholders, filled in per test so nothing outside tmp_path is
touched: ``@CANARY_URL@`` (a file:// URL of a canary file or FIFO) and ``@PORT@`` (a loopback
listener that records every connection). Each refusal must be a ``GatewayError`` with a named
reason code, take well under a second, read no file and open no connection.
"""

from __future__ import annotations

import gzip
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from gateway.domain.errors import (
    ForbiddenXml,
    GatewayError,
    InputError,
    MalformedXml,
    PayloadTooLarge,
)
from gateway.xml.parsing import DEFAULT_LIMITS, ParseLimits, parse_xml

CORPUS = Path(__file__).resolve().parents[1] / "data" / "hostile"
CANARY = "CANARY-7f3a9c"
# A canary that is also a valid DTD, so a parser that loads it gets as far as it can.
CANARY_DTD = f'<!-- {CANARY} --><!ENTITY leak "{CANARY}">'.encode()
BOUND_SECONDS = 2.0


# --- harness -------------------------------------------------------------------------------


@dataclass
class Outcome:
    error: GatewayError | None
    root: etree._Element | None
    seconds: float

    @property
    def kind(self) -> tuple[type | None, str | None]:
        if self.error is None:
            return (None, None)
        return (type(self.error), self.error.violations[0].code)

    def all_text(self) -> str:
        """Everything a caller could show: error detail, violations, or the parsed tree."""
        if self.error is not None:
            parts = [str(self.error), self.error.detail]
            for v in self.error.violations:
                parts += [v.path, v.code, v.message, v.value or ""]
            return "\n".join(parts)
        assert self.root is not None
        return etree.tostring(self.root, encoding="unicode") + "".join(self.root.itertext())


def attempt(data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> Outcome:
    """Parse; a GatewayError is an outcome, anything else escapes and fails the test."""
    start = time.perf_counter()
    try:
        root = parse_xml(data, limits)
    except GatewayError as exc:
        return Outcome(exc, None, time.perf_counter() - start)
    return Outcome(None, root, time.perf_counter() - start)


class Listener:
    """A loopback TCP canary: accepts and drops every connection, remembering it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.02)
        self.port: int = self.sock.getsockname()[1]
        self.connections: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(addr)
            conn.close()

    def received(self) -> list[tuple[str, int]]:
        """Stop listening and return every connection, including any still in the backlog."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self.sock.setblocking(False)
            while True:
                try:
                    conn, addr = self.sock.accept()
                except (BlockingIOError, OSError):
                    break
                self.connections.append(addr)
                conn.close()
        return self.connections

    def close(self) -> None:
        self.received()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    try:
        yield lst
    finally:
        lst.close()


@pytest.fixture
def canary_url(tmp_path: Path) -> str:
    path = tmp_path / "canary.dtd"
    path.write_bytes(CANARY_DTD)
    return path.as_uri()


def corpus_bytes(name: str, *, canary_url: str = "file:///nonexistent", port: int = 9) -> bytes:
    data = (CORPUS / name).read_bytes()
    return data.replace(b"@CANARY_URL@", canary_url.encode()).replace(b"@PORT@", str(port).encode())


# --- expectations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    error: type[GatewayError]
    code: str


DOCTYPE = Refused(ForbiddenXml, "xml.doctype_forbidden")
MALFORMED = Refused(MalformedXml, "xml.malformed")
ENCODING = Refused(MalformedXml, "xml.encoding")
EMPTY = Refused(MalformedXml, "xml.empty")
PI = Refused(ForbiddenXml, "xml.pi_forbidden")


REFUSED: dict[str, Refused] = {
    "billion_laughs.xml": DOCTYPE,
    "quadratic_blowup.xml": DOCTYPE,
    "recursive_entity.xml": DOCTYPE,
    "xxe_file.xml": DOCTYPE,
    "xxe_network.xml": DOCTYPE,
    "parameter_entity.xml": DOCTYPE,
    "parameter_entity_network.xml": DOCTYPE,
    "external_dtd.xml": DOCTYPE,
    "external_dtd_network.xml": DOCTYPE,
    "external_dtd_public.xml": DOCTYPE,
    "doctype_plain.xml": DOCTYPE,
    "stylesheet_pi.xml": PI,
    "pi_inside.xml": PI,
    "pi_after_root.xml": PI,
    "wrong_encoding.xml": ENCODING,
    "unknown_encoding.xml": ENCODING,
    "gbk_declared_utf8.xml": ENCODING,
    "utf16_no_bom_no_decl.xml": ENCODING,
    "empty.xml": EMPTY,
    "whitespace_only.xml": EMPTY,
    "not_xml.txt": MALFORMED,
    "truncated.xml": MALFORMED,
    "two_roots.xml": MALFORMED,
    "xml_decl_not_first.xml": MALFORMED,
    "nul_byte.xml": MALFORMED,
    "bad_char_ref.xml": MALFORMED,
    "undefined_entity.xml": MALFORMED,
    "duplicate_attribute.xml": MALFORMED,
    "namespace_undeclared_prefix.xml": MALFORMED,
    "namespace_xml_prefix_rebound.xml": MALFORMED,
    "namespace_xmlns_prefix_declared.xml": MALFORMED,
    "namespace_duplicate_attribute.xml": MALFORMED,
    "namespace_empty_prefix_binding.xml": MALFORMED,
}

# Inputs that look odd but are legitimate: they must parse, to the right text.
CEB = "{http://www.chinaport.gov.cn/ceb}"
PARSED: dict[str, dict[str, str]] = {
    "gbk_declared.xml": {f"{CEB}goodsName": "婴儿奶粉", f"{CEB}city": "上海市"},
    "bom_utf8.xml": {".": "货物"},
    "utf16_bom.xml": {".": "货物"},
    "utf16_no_bom.xml": {".": "货物"},
    "cdata_doctype.xml": {
        ".": '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>&x;',
    },
    "xinclude.xml": {},
    "xinclude_network.xml": {},
}

NETWORK_FILES = sorted(n for n in REFUSED | PARSED if b"@PORT@" in (CORPUS / n).read_bytes())
FILE_FILES = sorted(n for n in REFUSED | PARSED if b"@CANARY_URL@" in (CORPUS / n).read_bytes())


def test_every_corpus_file_has_an_expectation() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if not p.name.startswith(".")}
    assert on_disk == set(REFUSED) | set(PARSED)
    assert not set(REFUSED) & set(PARSED)


def test_stored_corpus_files_stay_small() -> None:
    sizes = {p.name: p.stat().st_size for p in CORPUS.iterdir()}
    assert max(sizes.values()) < 10_000, sizes


# --- the corpus -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_hostile_file_is_refused_with_its_named_reason(name: str, canary_url: str) -> None:
    expected = REFUSED[name]
    outcome = attempt(corpus_bytes(name, canary_url=canary_url))
    assert outcome.kind == (expected.error, expected.code), outcome.all_text()
    assert outcome.error is not None
    assert outcome.error.violations[0].message


@pytest.mark.parametrize("name", sorted(REFUSED | PARSED))
def test_every_corpus_file_is_handled_safely(
    name: str, canary_url: str, listener: Listener
) -> None:
    outcome = attempt(corpus_bytes(name, canary_url=canary_url, port=listener.port))
    assert outcome.seconds < BOUND_SECONDS
    assert CANARY not in outcome.all_text()
    assert listener.received() == []
    if outcome.error is not None:
        assert isinstance(outcome.error, InputError)
        assert outcome.error.violations, "a refusal must name its reason"
        assert all(v.code.startswith("xml.") for v in outcome.error.violations)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_legitimate_odd_inputs_parse_to_the_right_text(name: str, canary_url: str) -> None:
    outcome = attempt(corpus_bytes(name, canary_url=canary_url))
    assert outcome.error is None, outcome.all_text()
    root = outcome.root
    assert root is not None
    for path, text in PARSED[name].items():
        node = root if path == "." else root.find(path)
        assert node is not None, path
        assert node.text == text


def test_gbk_declared_document_keeps_its_chinese_text() -> None:
    root = parse_xml((CORPUS / "gbk_declared.xml").read_bytes())
    assert root.tag == f"{CEB}Order"
    assert [el.text for el in root] == ["婴儿奶粉", "上海市"]


def test_utf8_bom_is_not_part_of_the_text() -> None:
    root = parse_xml((CORPUS / "bom_utf8.xml").read_bytes())
    assert root.tag == "r"
    assert root.text == "货物"


# --- external resources: no file read, no connection ----------------------------------------


@pytest.mark.parametrize("name", FILE_FILES)
def test_the_canary_file_text_never_reaches_the_caller(name: str, canary_url: str) -> None:
    outcome = attempt(corpus_bytes(name, canary_url=canary_url))
    assert CANARY not in outcome.all_text()
    if outcome.root is not None:
        assert CANARY not in etree.tostring(outcome.root.getroottree(), encoding="unicode")


class FifoCanary:
    """A FIFO at the canary URL: whoever opens it for reading is noticed (and unblocked)."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody has it open for reading
                self._stop.wait(0.001)
                continue
            self.opened.set()
            try:
                os.write(fd, CANARY_DTD)
            except OSError:
                pass
            finally:
                os.close(fd)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
@pytest.mark.parametrize(
    "name",
    [
        "xxe_file.xml",
        "xinclude.xml",
        "parameter_entity.xml",
        "external_dtd.xml",
    ],
)
def test_no_local_file_is_opened(name: str, tmp_path: Path) -> None:
    fifo = FifoCanary(tmp_path / "canary.fifo")
    try:
        outcome = attempt(corpus_bytes(name, canary_url=fifo.path.as_uri()))
    finally:
        fifo.stop()
    assert not fifo.opened.is_set(), f"{name} opened the canary ({outcome.kind})"
    assert outcome.seconds < BOUND_SECONDS


def test_local_file_content_never_appears_in_an_error(tmp_path: Path) -> None:
    secret = tmp_path / "secret.dtd"
    secret.write_text(f'<!ENTITY {CANARY.replace("-", "")} "x" junk>')
    outcome = attempt(f'<!DOCTYPE r SYSTEM "{secret.as_uri()}"><r/>'.encode())
    assert outcome.error is not None
    assert CANARY.replace("-", "") not in outcome.all_text()


def test_refusals_do_not_reveal_whether_a_local_path_exists(tmp_path: Path) -> None:
    existing = tmp_path / "exists.txt"
    existing.write_text("root:x:0:0:root:/root:/bin/bash\n")
    answers = set()
    for path in [existing, tmp_path, tmp_path / "missing.txt"]:
        outcome = attempt(f'<!DOCTYPE r SYSTEM "{path.as_uri()}"><r/>'.encode())
        assert outcome.error is not None
        answers.add((outcome.kind, outcome.error.detail))
    assert len(answers) == 1, answers


@pytest.mark.parametrize("name", NETWORK_FILES)
def test_no_network_connection_is_made(name: str, listener: Listener) -> None:
    outcome = attempt(corpus_bytes(name, port=listener.port))
    assert outcome.seconds < BOUND_SECONDS
    assert listener.received() == [], f"{name} connected to the canary listener"


def test_the_listener_would_notice_a_connection(listener: Listener) -> None:
    with socket.create_connection(("127.0.0.1", listener.port), timeout=1):
        pass
    assert len(listener.received()) == 1


def test_xinclude_is_not_processed(canary_url: str) -> None:
    root = parse_xml(corpus_bytes("xinclude.xml", canary_url=canary_url))
    children = list(root)
    assert [c.tag for c in children] == ["{http://www.w3.org/2001/XInclude}include"]
    assert children[0].get("href") == canary_url
    assert children[0].text is None
    assert len(children[0]) == 0
    assert CANARY not in "".join(root.itertext())


# --- depth, size, width (generated, not stored) ---------------------------------------------


def nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


def test_nesting_at_the_default_depth_limit_parses() -> None:
    root = parse_xml(nested(DEFAULT_LIMITS.max_depth))
    assert len(list(root.iter())) == DEFAULT_LIMITS.max_depth


def test_one_level_beyond_the_default_limit_is_too_deep() -> None:
    outcome = attempt(nested(DEFAULT_LIMITS.max_depth + 1))
    assert outcome.kind == (ForbiddenXml, "xml.too_deep")


def test_a_custom_depth_limit_is_honoured() -> None:
    limits = ParseLimits(max_depth=5)
    assert attempt(nested(5), limits).error is None
    assert attempt(nested(6), limits).kind == (ForbiddenXml, "xml.too_deep")


def test_depth_counts_elements_not_text_or_siblings() -> None:
    wide = b"<a>" + b"<b>text<c/></b>" * 1000 + b"</a>"
    assert attempt(wide, ParseLimits(max_depth=3)).error is None


@pytest.mark.parametrize("depth", [300, 10_000])
def test_very_deep_nesting_is_refused_quickly(depth: int) -> None:
    outcome = attempt(nested(depth))
    assert isinstance(outcome.error, InputError)
    assert outcome.seconds < BOUND_SECONDS


@pytest.mark.parametrize("depth", [300, 10_000])
def test_very_deep_nesting_is_named_too_deep(depth: int) -> None:
    outcome = attempt(nested(depth))
    assert outcome.kind == (ForbiddenXml, "xml.too_deep")


def test_a_body_over_the_size_limit_is_too_large_before_parsing() -> None:
    limits = ParseLimits(max_bytes=100)
    hostile = (CORPUS / "billion_laughs.xml").read_bytes()
    assert len(hostile) > 100
    outcome = attempt(hostile, limits)
    assert outcome.kind == (PayloadTooLarge, "xml.too_large")


def test_the_size_limit_is_inclusive() -> None:
    body = b"<r>" + b"x" * 93 + b"</r>"
    assert len(body) == 100
    assert attempt(body, ParseLimits(max_bytes=100)).error is None
    assert attempt(body + b" ", ParseLimits(max_bytes=100)).kind == (
        PayloadTooLarge,
        "xml.too_large",
    )


def test_twenty_megabytes_of_text_is_too_large_and_quick() -> None:
    body = b"<r>" + b"a" * (20 * 1024 * 1024) + b"</r>"
    outcome = attempt(body)
    assert outcome.kind == (PayloadTooLarge, "xml.too_large")
    assert outcome.seconds < BOUND_SECONDS


def test_ten_thousand_attributes_parse_within_the_bound() -> None:
    attrs = b" ".join(b'a%d="%d"' % (i, i) for i in range(10_000))
    outcome = attempt(b"<r " + attrs + b"/>")
    assert outcome.error is None
    assert outcome.root is not None
    assert len(outcome.root.attrib) == 10_000
    assert outcome.seconds < BOUND_SECONDS


def test_ten_thousand_duplicate_attributes_are_malformed() -> None:
    attrs = b" ".join(b'a="%d"' % i for i in range(10_000))
    outcome = attempt(b"<r " + attrs + b"/>")
    assert outcome.kind == (MalformedXml, "xml.malformed")
    assert outcome.seconds < BOUND_SECONDS


def test_a_hundred_thousand_elements_parse_within_the_bound() -> None:
    outcome = attempt(b"<r>" + b"<i/>" * 100_000 + b"</r>")
    assert outcome.error is None
    assert outcome.root is not None
    assert len(outcome.root) == 100_000
    assert outcome.seconds < BOUND_SECONDS


def test_a_gzip_bomb_is_not_decompressed() -> None:
    bomb = gzip.compress(b"<r>" + b"<i/>" * 2_000_000 + b"</r>")
    assert len(bomb) < 100_000
    outcome = attempt(bomb)
    assert outcome.kind == (MalformedXml, "xml.malformed")
    assert outcome.seconds < BOUND_SECONDS


def test_many_processing_instructions_inside_are_refused_at_the_first() -> None:
    body = b"<r>" + b"<?p x?>" * 10_000 + b"</r>"
    outcome = attempt(body)
    assert outcome.kind == (ForbiddenXml, "xml.pi_forbidden")
    assert outcome.error is not None
    assert outcome.error.violations[0].line == 1
