"""The port / terminal operator: manifests, then exactly one release per consignment.

The port answers a second release of a consignment with 409; that is terminal (a retry of
the same bytes cannot help) and is exactly what "release once" must never provoke.
"""

from __future__ import annotations

from adapters.dxp_client import DxpAuthorityClient


class PortClient(DxpAuthorityClient):
    """The port adapter."""

    name = "port"
