"""Open an uploaded ZIP without trusting it: sizes, ratios and names are checked from the
central directory before a byte is inflated, and every read is bounded.

Nothing is ever extracted to disk; a name that would escape a folder (``../``, ``/etc``,
``C:\\``) still refuses the whole upload, because only a hostile tool writes one.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from gateway.domain.errors import PayloadTooLarge, UnreadableUpload, Violation

# A member that unpacks to more than this is judged by its compression ratio as well.
RATIO_FLOOR_BYTES = 1 << 20
MAX_RATIO = 200
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class ArchiveLimits:
    """How much an archive may hold: members, and bytes once inflated."""

    max_members: int
    max_uncompressed: int


def _refuse(code: str, detail: str, message: str, path: str = "/") -> UnreadableUpload:
    return UnreadableUpload(detail, violations=[Violation(path, code, message)])


def is_zip(body: bytes) -> bool:
    return body.startswith(ZIP_MAGIC)


def _unsafe(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or name.startswith("/"):
        return True
    if len(name) > 1 and name[1] == ":":  # a drive letter
        return True
    return any(part == ".." for part in name.split("/"))


def ignored(name: str) -> bool:
    """Folders and the clutter archivers add (__MACOSX/, .DS_Store, dotfiles)."""
    base = name.rsplit("/", 1)[-1]
    return name.endswith("/") or name.startswith("__MACOSX/") or base.startswith(".")


def open_zip(body: bytes, limits: ArchiveLimits, what: str = "ZIP archive") -> zipfile.ZipFile:
    """The archive, once its directory shows no bomb, no encrypted member and no unsafe
    name; UnreadableUpload or PayloadTooLarge otherwise."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        infos = archive.infolist()
    # zipfile raises NotImplementedError for a version or method it does not know, and
    # OverflowError or UnicodeDecodeError for damaged fields (found by fuzzing, T5).
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        ValueError,
        EOFError,
        NotImplementedError,
        OverflowError,
    ) as exc:
        raise _refuse(
            "batch.not_a_zip", f"The {what} cannot be read: {exc}.", "not a readable ZIP file"
        ) from None
    if len(infos) > limits.max_members:
        raise PayloadTooLarge(
            f"The {what} holds {len(infos)} entries; the limit is {limits.max_members}.",
            violations=[Violation("/", "batch.too_many_items", f"at most {limits.max_members}")],
        )
    total = 0
    for info in infos:
        if _unsafe(info.filename):
            raise _refuse(
                "zip.unsafe_path",
                f"The {what} has an entry named {info.filename!r}, which escapes its folder.",
                "absolute paths, drive letters, backslashes and '..' are refused",
                path=info.filename,
            )
        if info.flag_bits & 0x1:
            raise _refuse(
                "zip.encrypted",
                f"{info.filename} in the {what} is encrypted.",
                "send the archive without a password",
                path=info.filename,
            )
        total += info.file_size
        ratio = info.file_size / max(1, info.compress_size)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            raise _refuse(
                "zip.bomb",
                f"{info.filename} in the {what} would inflate {ratio:.0f} times "
                f"(to {info.file_size} bytes); the limit is {MAX_RATIO} times.",
                "compression ratio too high (a zip bomb?)",
                path=info.filename,
            )
    if total > limits.max_uncompressed:
        raise PayloadTooLarge(
            f"The {what} would unpack to {total} bytes; the limit is {limits.max_uncompressed}.",
            violations=[Violation("/", "zip.too_large", "uncompressed size over the limit")],
        )
    return archive


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> bytes:
    """A member's bytes, never more than its declared size (or ``max_bytes``), whatever its
    header claims; UnreadableUpload when the data is longer, corrupt or fails its CRC."""
    limit = min(info.file_size, max_bytes)
    try:
        with archive.open(info) as fh:
            data = fh.read(limit + 1)
    except Exception as exc:  # zipfile fails in many ways on a damaged archive
        raise _refuse(
            "zip.corrupt", f"{info.filename} cannot be read: {exc}.", "corrupt entry"
        ) from None
    if len(data) > limit:
        raise _refuse(
            "zip.size_mismatch",
            f"{info.filename} holds more than the {limit} bytes its header declares.",
            "the entry is larger than declared",
            path=info.filename,
        )
    return data
