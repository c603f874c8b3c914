"""Which certificates an authority accepts from which sender (DXP id), as enterprises
register their key cards with the e-port; and which policy a signature claims."""

from __future__ import annotations

import threading
from pathlib import Path

from lxml import etree

from signing.keys import TrustStore
from signing.policy import (
    RSA_SHA1_LEGACY,
    RSA_SHA1_URI,
    RSA_SHA256,
    SM2_SM3,
    SM2_SM3_URI,
    SignaturePolicy,
)

DS = "{http://www.w3.org/2000/09/xmldsig#}"


class SenderRegistry:
    """Trust stores per sender, read from ``<dir>/<dxp id>/*.crt`` and refreshed on change."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, TrustStore]] = {}

    def trust_for(self, sender_id: str) -> TrustStore | None:
        """The certificates registered for ``sender_id``, or None if it registered none."""
        folder = self.directory / sender_id
        if not sender_id or "/" in sender_id or sender_id.startswith(".") or not folder.is_dir():
            return None
        stamp = max((p.stat().st_mtime for p in folder.iterdir()), default=0.0)
        with self._lock:
            cached = self._cache.get(sender_id)
            if cached is None or cached[0] != stamp:
                cached = (stamp, TrustStore.from_directory(folder))
                self._cache[sender_id] = cached
            return cached[1]


def policy_claimed(root: etree._Element) -> SignaturePolicy:
    """The verification policy for the algorithm the signature names (checked again inside
    verification; this only picks which family of algorithms is allowed)."""
    method = root.find(f"{DS}Signature/{DS}SignedInfo/{DS}SignatureMethod")
    uri = method.get("Algorithm", "") if method is not None else ""
    if uri == SM2_SM3_URI:
        return SM2_SM3
    if uri == RSA_SHA1_URI:
        return RSA_SHA1_LEGACY
    return RSA_SHA256
