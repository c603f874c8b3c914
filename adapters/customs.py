"""Customs (海关): every declared message goes here."""

from __future__ import annotations

from adapters.dxp_client import DxpAuthorityClient


class CustomsClient(DxpAuthorityClient):
    """The customs adapter; the same class talks to the sandbox or the real endpoint."""

    name = "customs"
