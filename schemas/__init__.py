"""Our own message schemas (XSD) and the table that maps message types to them."""

from schemas.registry import (
    CEB_NS,
    MessageSpec,
    all_specs,
    find_spec,
    get_spec,
    schema_for,
)

__all__ = ["CEB_NS", "MessageSpec", "all_specs", "find_spec", "get_spec", "schema_for"]
