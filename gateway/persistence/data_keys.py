"""Personal data at rest: stored XML blobs sealed with AES-256-GCM under named data keys.

A sealed blob is ``0x01 | len(key id) | key id | 12-byte nonce | ciphertext+tag``; the
header and the blob's place (table, column, row) are the associated data, so a blob cannot
be moved to another row or relabelled. XML never starts with byte 0x01, so a blob without
the prefix is plaintext written before encryption was introduced: it still reads, and
``data-keys reencrypt`` seals it. The first key of the ring seals; every key opens.

The ring is bound to a database URL once per process (bootstrap), and the repository's
message and receipt functions seal and open through it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine

VERSION = 0x01
NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


class DataKeyError(RuntimeError):
    """A data key is missing, malformed, or does not open a blob (an operator's problem)."""


@dataclass(frozen=True)
class DataKeyRing:
    """Named AES-256 keys; the first seals, all open."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise DataKeyError("the data key ring is empty")
        for kid, key in self.keys:
            if not _KEY_ID.match(kid):
                raise DataKeyError(f"data key id {kid!r} must be 1-32 of A-Z a-z 0-9 . _ -")
            if len(key) != 32:
                raise DataKeyError(f"data key {kid} must be 32 bytes (AES-256), not {len(key)}")
        object.__setattr__(self, "_ciphers", {kid: AESGCM(key) for kid, key in self.keys})

    @classmethod
    def parse(cls, spec: str) -> DataKeyRing:
        """Read ``kid:base64,kid:base64`` (commas or new lines between keys)."""
        keys = []
        for item in re.split(r"[,\s]+", spec.strip()):
            if not item:
                continue
            kid, sep, b64 = item.partition(":")
            if not sep:
                raise DataKeyError("each data key is written key-id:base64-key")
            try:
                keys.append((kid, base64.b64decode(b64, validate=True)))
            except (binascii.Error, ValueError):
                raise DataKeyError(f"data key {kid} is not valid base64") from None
        return cls(tuple(keys))

    def knows(self, kid: str) -> bool:
        return kid in self.__dict__["_ciphers"]

    @property
    def primary(self) -> str:
        return self.keys[0][0]

    def _cipher(self, kid: str) -> AESGCM:
        cipher: AESGCM | None = self.__dict__["_ciphers"].get(kid)
        if cipher is None:
            raise DataKeyError(f"data key {kid} is not configured (GATEWAY_DATA_KEYS)")
        return cipher

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """Encrypt under the primary key, bound to ``context`` (where the blob lives)."""
        kid = self.primary.encode()
        header = bytes([VERSION, len(kid)]) + kid
        nonce = os.urandom(NONCE_BYTES)
        aad = header + context.encode()
        return header + nonce + self._cipher(self.primary).encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, context: str) -> bytes:
        """The plaintext of a sealed blob; a blob without the prefix is returned as is."""
        kid = key_id_of(blob)
        if kid is None:
            return blob
        start = 2 + blob[1]
        header, nonce = blob[:start], blob[start : start + NONCE_BYTES]
        try:
            return self._cipher(kid).decrypt(
                nonce, blob[start + NONCE_BYTES :], header + context.encode()
            )
        except InvalidTag:
            raise DataKeyError(f"a blob sealed under {kid} does not open at {context}") from None


def key_id_of(blob: bytes) -> str | None:
    """The key id a blob is sealed under, or None for plaintext."""
    if len(blob) < 2 or blob[0] != VERSION:
        return None
    return blob[2 : 2 + blob[1]].decode("ascii", "replace")


def new_key_line(at: datetime | None = None) -> str:
    """A fresh ``kid:base64`` data key; the id says when it was made."""
    at = at or datetime.now(UTC)
    kid = f"k{at:%Y%m%d}-{secrets.token_hex(3)}"
    return f"{kid}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


def load_ring(configured: str, key_file: Path) -> DataKeyRing:
    """The configured ring, or the one kept in ``key_file`` (made once, 0600)."""
    if configured.strip():
        return DataKeyRing.parse(configured)
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a private name, then linked into place: a process starting at
        # the same moment sees either no file or a complete one, never an empty one.
        tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_key_line() + "\n")
        try:
            os.link(tmp, key_file)
        except FileExistsError:  # another process made it first: use theirs
            pass
        finally:
            tmp.unlink()
    return DataKeyRing.parse(key_file.read_text())


def prepend_key(key_file: Path) -> str:
    """Rotate a file-kept ring: a new first (sealing) key; the old ones still open."""
    line = new_key_line()
    old = key_file.read_text() if key_file.exists() else ""
    tmp = key_file.with_name(key_file.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(line + "\n" + old)
    os.replace(tmp, key_file)
    return line.partition(":")[0]


# --- the ring of each database, bound once per process ----------------------------------

_RINGS: dict[str, DataKeyRing] = {}
_RELOADERS: dict[str, Callable[[], DataKeyRing]] = {}


def _url_key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def bind(
    engine: Engine, ring: DataKeyRing, reload: Callable[[], DataKeyRing] | None = None
) -> None:
    """Seal and open this database's blobs with ``ring`` (bootstrap calls this); ``reload``
    reads the configured ring again when a blob names a key this process has not seen (a
    rotation by another process)."""
    _RINGS[_url_key(engine)] = ring
    if reload is not None:
        _RELOADERS[_url_key(engine)] = reload


def ring_for(conn: Connection) -> DataKeyRing:
    """The ring bound to the connection's database; refuses to go on without one."""
    ring = _RINGS.get(_url_key(conn.engine))
    if ring is None:
        raise DataKeyError("no data keys are loaded for this database (build the runtime first)")
    return ring


def open_blob(conn: Connection, blob: bytes, context: str) -> bytes:
    """Open a stored blob; a key id this process does not know yet reloads the ring once."""
    ring = ring_for(conn)
    kid = key_id_of(blob)
    reload = _RELOADERS.get(_url_key(conn.engine))
    if kid is not None and not ring.knows(kid) and reload is not None:
        ring = reload()
        _RINGS[_url_key(conn.engine)] = ring
    return ring.open(blob, context)
