"""Inspection & quarantine (检验检疫): inventory lists whose goods are on its lists."""

from __future__ import annotations

from adapters.dxp_client import DxpAuthorityClient


class InspectionClient(DxpAuthorityClient):
    """The inspection & quarantine adapter."""

    name = "inspection"
