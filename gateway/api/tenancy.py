"""Foreign = nonexistent, also in errors: a 409 names only declarations the caller sees.

"Declare once" is global (a business key or guid can be declared once, by anyone), so a
duplicate must still be refused; but the refusal may not hand one tenant the ids of another
tenant's declarations or messages. ``redacting`` rewrites such a problem before it leaves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine

from gateway.domain.access import Viewer
from gateway.domain.errors import DuplicateDeclaration
from gateway.persistence.visibility import find_visible

_ID = re.compile(r"\bdcl_[0-9a-f]{24}\b")
HIDDEN = "a declaration of another organisation"


def _mentioned(exc: DuplicateDeclaration) -> set[str]:
    found = set(_ID.findall(exc.detail))
    for v in exc.violations:
        found.update(_ID.findall(v.message))
    for key in ("existing_declaration_id", "existing_declaration_ids"):
        value = exc.extra.get(key)
        found.update(value if isinstance(value, list) else [value] if value else [])
    return found


def redact(exc: DuplicateDeclaration, engine: Engine, viewer: Viewer) -> DuplicateDeclaration:
    """The same refusal without the ids of declarations (and messages) the viewer can't see."""
    mentioned = _mentioned(exc)
    with engine.connect() as conn:
        hidden = {i for i in mentioned if find_visible(conn, viewer, i) is None}
    if not hidden:
        return exc

    def scrub(text: str) -> str:
        return _ID.sub(lambda m: HIDDEN if m.group(0) in hidden else m.group(0), text)

    extra: dict[str, Any] = dict(exc.extra)
    if isinstance(extra.get("existing_declaration_ids"), list):
        extra["existing_declaration_ids"] = [
            i for i in extra["existing_declaration_ids"] if i not in hidden
        ]
    if extra.get("existing_declaration_id") in hidden:
        extra.pop("existing_declaration_id")
    extra.pop("existing_message_id", None)  # a message is shown only when all of it is
    out = DuplicateDeclaration(
        scrub(exc.detail),
        violations=[replace(v, message=scrub(v.message)) for v in exc.violations],
        extra=extra,
    )
    return out


@contextmanager
def redacting(engine: Engine, viewer: Viewer) -> Iterator[None]:
    """Re-raise a DuplicateDeclaration with foreign ids taken out."""
    try:
        yield
    except DuplicateDeclaration as exc:
        raise redact(exc, engine, viewer) from None
