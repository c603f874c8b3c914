"""Which declarations an organisation sees: one rule, one place, so it can be swapped.

For now an organisation sees the declarations it submitted. DESIGN.md §5 asks for more (every
declaration in which one of its registered codes appears); replacing this clause changes the
events feed and the webhooks together.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement

from gateway.persistence import tables as t


def declarations_visible_to(org_id: str) -> ColumnElement[bool]:
    """A WHERE clause over ``declarations``: true for the rows ``org_id`` may see."""
    return t.declarations.c.org_id == org_id
