"""Password hashes for dashboard users: scrypt (stdlib), self-describing, compared in constant time.

Stored as ``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>`` so the cost can be raised later and old
hashes still verify.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# RFC 7914 / OWASP interactive-login parameters: 16 MiB of memory per hash.
N, R, P = 2**14, 8, 1
DKLEN = 32
MIN_LENGTH = 10


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """A new salted scrypt hash of ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=DKLEN, maxmem=256 * n * r * p
    )
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; malformed hashes never match."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        n_, r_, p_ = int(n), int(r), int(p)
        expected = bytes.fromhex(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt),
            n=n_,
            r=r_,
            p=p_,
            dklen=len(expected),
            maxmem=256 * n_ * r_ * p_,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    return None
