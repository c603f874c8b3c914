"""Personal data never reaches a log: every record's message (and traceback) is passed
through the ID-card and mobile-number redaction when it is made, whatever the handler."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from gateway.domain.privacy import redact_text

_installed = False


def install_log_redaction() -> None:
    """Wrap the log record factory once per process (idempotent)."""
    global _installed
    if _installed:
        return
    base = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: let the handler report it as usual
            return record
        record.msg, record.args = redact_text(message), ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact_text("".join(traceback.format_exception(*record.exc_info)))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
