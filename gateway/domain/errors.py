"""The gateway's one error tree.

Every failure a user can cause or see is a ``GatewayError``. Each class names its RFC 9457
problem type, title and HTTP status, and carries data (violations, the existing resource)
rather than prose alone, so the API renders it without guessing. Third-party exceptions are
translated into these at the edge that calls the library; none crosses a port.

    GatewayError
      InputError (400)
        MalformedXml, ForbiddenXml, MalformedRequest
        PayloadTooLarge (413), UnsupportedMediaType (415), UnknownMessageType (415)
        SchemaInvalid (422), BusinessRuleViolation (422), IdempotencyKeyReused (422)
        InvalidQuery (422): a bad filter or search parameter
        UnreadableUpload (400), TemplateMismatch (422): bulk uploads
      AuthenticationRequired (401), PermissionDenied (403)
        ClientCertificateRequired (401), ClientCertificateRefused (403): mutual TLS
      NotFound (404)
      DuplicateDeclaration (409)
      ReceiptRejected (400): a receipt that failed verification or matched nothing
      SigningFailed (503): our own key could not sign; NoSigningKey (409): none registered
      RetryableAuthorityError, TerminalAuthorityError (adapters)
      ServiceUnavailable (503)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Violation:
    """One thing wrong with an input: where (path, line), which rule (code), and why."""

    path: str
    code: str
    message: str
    line: int | None = None
    value: str | None = None
    message_zh: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The ``errors[]`` entry of a problem document."""
        out: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "code": self.code,
            "message": self.message,
        }
        if self.message_zh is not None:
            out["message_zh"] = self.message_zh
        if self.value is not None:
            out["value"] = self.value
        return out


class GatewayError(Exception):
    """Base of every error the gateway reports to a user."""

    status: ClassVar[int] = 500
    type_slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        violations: list[Violation] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.violations: list[Violation] = list(violations or [])
        self.extra: dict[str, Any] = dict(extra or {})


class InputError(GatewayError):
    status = 400
    type_slug = "invalid-input"
    title = "Invalid input"


class MalformedXml(InputError):
    type_slug = "malformed-xml"
    title = "Malformed XML"


class ForbiddenXml(InputError):
    """Well-formed but refused on purpose: DOCTYPE, entities, PIs, too deep."""

    type_slug = "forbidden-xml"
    title = "Forbidden XML construct"


class MalformedRequest(InputError):
    type_slug = "malformed-request"
    title = "Malformed request"


class PayloadTooLarge(InputError):
    status = 413
    type_slug = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(InputError):
    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported media type"


class UnknownMessageType(InputError):
    status = 415
    type_slug = "unknown-message-type"
    title = "Unknown message type"


class SchemaInvalid(InputError):
    status = 422
    type_slug = "schema-invalid"
    title = "The message does not match its schema"


class BusinessRuleViolation(InputError):
    status = 422
    type_slug = "business-rule"
    title = "The message breaks a business rule"


class IdempotencyKeyReused(InputError):
    status = 422
    type_slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different body"


class AuthenticationRequired(GatewayError):
    status = 401
    type_slug = "authentication-required"
    title = "Authentication required"


class PermissionDenied(GatewayError):
    status = 403
    type_slug = "permission-denied"
    title = "Permission denied"


class ClientCertificateRequired(AuthenticationRequired):
    """The endpoint takes only callers with a verified client certificate (mutual TLS), and
    this request came without one: over plain HTTP, or with TLS ended before the gateway."""

    type_slug = "client-certificate-required"
    title = "Client certificate required"


class ClientCertificateRefused(PermissionDenied):
    """A verified client certificate, but of someone this endpoint does not take (another
    authority's or an organisation's): the CA vouches for who it is, not what it may do."""

    type_slug = "client-certificate-refused"
    title = "Client certificate not allowed here"


class NotFound(GatewayError):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class DuplicateDeclaration(GatewayError):
    status = 409
    type_slug = "duplicate"
    title = "Already declared"


class ReceiptRejected(InputError):
    type_slug = "receipt-rejected"
    title = "Receipt rejected"


class SigningFailed(GatewayError):
    """Our key could not sign (a token unplugged, a file unreadable): retry later."""

    status = 503
    type_slug = "signing-failed"
    title = "Signing failed"


class NoSigningKey(GatewayError):
    """The organisation has no active signing key: an operator must register one."""

    status = 409
    type_slug = "no-signing-key"
    title = "No signing key registered"


class ServiceUnavailable(GatewayError):
    status = 503
    type_slug = "unavailable"
    title = "Service unavailable"


class RetryableAuthorityError(GatewayError):
    """Timeouts, connection errors, 5xx, planned outages: try the same bytes again later."""

    status = 502
    type_slug = "authority-unavailable"
    title = "Authority unavailable"


class TerminalAuthorityError(GatewayError):
    """The authority refused the envelope itself (4xx): retrying the same bytes cannot help."""

    status = 502
    type_slug = "authority-refused"
    title = "Authority refused the message"


class InvalidQuery(InputError):
    """A query parameter (a filter, a cursor, a search) with a value it cannot have."""

    status = 422
    type_slug = "invalid-query"
    title = "Invalid query parameter"


class UnreadableUpload(InputError):
    """A bulk upload that cannot be read as what it claims: not a ZIP, a zip bomb, a path
    that escapes the archive, a CSV in an unknown encoding."""

    type_slug = "unreadable-upload"
    title = "The upload cannot be read"


class TemplateMismatch(InputError):
    """A spreadsheet whose header row does not fit a document template."""

    status = 422
    type_slug = "template-mismatch"
    title = "The spreadsheet does not fit its template"
