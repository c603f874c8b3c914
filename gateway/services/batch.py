"""Bulk submission: keep the upload, then declare its items a hundred at a time through
declare_many, with the answers single submissions would get.

Accepting a batch stores its bytes, one pending row per item and its chunks (runs of
consecutive items) in one transaction; one rq job per chunk (gateway/jobs/batch.py) then
claims the chunk with a lease and declares its pending items. Each item is declared with the
Idempotency-Key ``batch:<batch id>:<position>`` and, for spreadsheets, guids derived from the
same pair, so a batch processed twice (a worker killed, the relay re-enqueueing) replays the
declarations it already made instead of declaring anything twice; the item rows say what is
left. A bad item is recorded with the same problem a single submission would get and the
next item goes on.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.domain.errors import GatewayError, IdempotencyKeyReused, ServiceUnavailable, Violation
from gateway.persistence import batches as store
from gateway.persistence import repository as repo
from gateway.persistence.ids import new_id
from gateway.services.batch_reader import (
    KIND_MEDIA,
    BatchLimits,
    Upload,
    UploadItem,
    member_body,
    read_upload,
)
from gateway.services.declare_many import Outcome, Submission, Unexpected, declare_many
from gateway.services.runtime import Runtime
from gateway.services.sheet_documents import Defaults, locate, message_json
from gateway.services.validate import validate_file

log = logging.getLogger(__name__)
FLUSH_ITEMS = 100
RETRY_SECONDS = 5.0
MIN_CHUNK = 250
MAX_CHUNKS = 16


@dataclass(frozen=True)
class BatchAccepted:
    id: str
    total: int
    chunks: int
    replayed: bool = False


def _replay(rt: Runtime, org_id: str, key: str, body_hash: str) -> BatchAccepted | None:
    """The batch an earlier upload with this Idempotency-Key made, if any."""
    with rt.engine.connect() as conn:
        found = store.find_batch_by_idempotency_key(conn, org_id, key)
        if found is None:
            return None
        if found["body_hash"] != body_hash:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used before with a different upload.",
                violations=[
                    Violation("/", "idempotency.key_reused", "send the original file, or a new key")
                ],
                extra={"batch_id": found["id"]},
            )
        return BatchAccepted(found["id"], found["total"], 0, replayed=True)


def submit_batch(
    rt: Runtime,
    org_id: str,
    body: bytes,
    content_type: str,
    filename: str,
    template: str | None,
    limits: BatchLimits,
    grace_seconds: float,
    idempotency_key: str | None = None,
) -> BatchAccepted:
    """Read the upload (refusing it whole if unreadable) and store it with its items; an
    upload retried with the same Idempotency-Key answers with the batch it made."""
    body_hash = hashlib.sha256(body).hexdigest()
    if idempotency_key:
        replay = _replay(rt, org_id, idempotency_key, body_hash)
        if replay is not None:
            return replay
    upload = read_upload(body, content_type, filename, template, limits)
    at = repo.now()
    batch_id = new_id("bat")
    items = [{"position": i.position, "name": i.name[:300], "rows": i.rows} for i in upload.items]
    due = at + timedelta(seconds=grace_seconds)
    chunks = [
        {"chunk": n, "first_position": first, "last_position": last, "requeue_at": due}
        for n, (first, last) in enumerate(plan_chunks(len(items)))
    ]
    try:
        with rt.engine.begin() as conn:
            store.insert_batch(
                conn,
                items,
                chunks,
                id=batch_id,
                org_id=org_id,
                kind=upload.kind,
                template=upload.template.type if upload.template else None,
                filename=filename[:255] or None,
                status="queued",
                total=len(items),
                upload=body,
                body_hash=body_hash,
                idempotency_key=idempotency_key,
                created_at=at,
                updated_at=at,
            )
    except IntegrityError:
        return _concurrent_twin(rt, org_id, idempotency_key, body_hash)
    return BatchAccepted(batch_id, len(items), len(chunks))


def _concurrent_twin(rt: Runtime, org_id: str, key: str | None, body_hash: str) -> BatchAccepted:
    """The same upload and key arrived twice at once and the other one was stored first."""
    replay = _replay(rt, org_id, key, body_hash) if key else None
    if replay is None:
        raise ServiceUnavailable("The batch could not be stored; please retry.")
    return replay


def plan_chunks(total: int) -> list[tuple[int, int]]:
    """(first, last) item positions of each chunk: at least MIN_CHUNK items (each chunk job
    reads the upload again), at most MAX_CHUNKS chunks (workers to share it among)."""
    size = max(MIN_CHUNK, -(-total // MAX_CHUNKS))
    return [(first, min(total, first + size - 1)) for first in range(1, total + 1, size)]


def _item_body(
    rt: Runtime, batch: Any, upload: Upload, item: UploadItem, limits: BatchLimits, dxp_id: str
) -> tuple[bytes, str]:
    if item.member is not None:
        return member_body(upload, item, limits)
    assert upload.template is not None and item.document is not None
    defaults = Defaults(batch["id"], item.position, repo.as_utc(batch["created_at"]), dxp_id)
    return message_json(upload.template, item.document, defaults), "application/json"


def _rejected(upload: Upload, item: UploadItem, exc: GatewayError) -> dict[str, Any]:
    doc = item.document
    if doc is not None and upload.template is not None:
        errors = [locate(upload.template, doc, v) for v in exc.violations]
    else:
        errors = [v.as_dict() for v in exc.violations]
    return dict(
        position=item.position,
        status="rejected",
        http_status=exc.status,
        title=exc.title,
        detail=exc.detail,
        errors=errors,
        declaration_ids=exc.extra.get("existing_declaration_ids")
        or (
            [exc.extra["existing_declaration_id"]]
            if "existing_declaration_id" in exc.extra
            else None
        ),
    )


def _rows_refused(
    rt: Runtime, batch: Any, upload: Upload, item: UploadItem, limits: BatchLimits, dxp_id: str
) -> dict[str, Any]:
    """Rows that do not form one document are not declared; what the validation would say
    of the document their first row describes is reported with them, so all is said at once."""
    assert item.document is not None and upload.template is not None
    body, _media = _item_body(rt, batch, upload, item, limits, dxp_id)
    report = validate_file(item.name, body, rt.limits, "json")
    errors = item.document.errors + [
        locate(upload.template, item.document, v) for v in report.errors
    ]
    return dict(
        position=item.position,
        status="rejected",
        http_status=422,
        title="The rows do not form one document",
        detail=f"{len(errors)} problem(s) in {item.document.name}.",
        errors=errors,
    )


def _result(upload: Upload, item: UploadItem, outcome: Outcome, at: Any) -> dict[str, Any]:
    """An item's result row: accepted, or rejected with the problem a single submission
    would get."""
    if isinstance(outcome, GatewayError):
        return {**_rejected(upload, item, outcome), "processed_at": at}
    return dict(
        position=item.position,
        status="accepted",
        http_status=200 if outcome.replayed else 202,
        title="Accepted",
        detail=f"{outcome.message_type}, {len(outcome.declarations)} document(s)",
        message_id=outcome.message_id,
        declaration_ids=[d.id for d in outcome.declarations],
        errors=[],
        processed_at=at,
    )


def declare_items(
    rt: Runtime,
    batch: Any,
    upload: Upload,
    items: list[UploadItem],
    limits: BatchLimits,
    dxp_id: str,
) -> tuple[list[dict[str, Any]], GatewayError | None]:
    """Declare items together (declare_many); their result rows, and the error that stopped
    them if a later attempt can cure it (503: the signing key unplugged) — the rows then
    cover only the items before it."""
    at = repo.now()
    rows: dict[int, dict[str, Any]] = {}
    submitted: list[UploadItem] = []
    submissions: list[Submission] = []
    for item in items:
        if item.document is not None and item.document.errors:
            rows[item.position] = _rows_refused(rt, batch, upload, item, limits, dxp_id) | {
                "processed_at": at
            }
            continue
        try:
            body, media = _item_body(rt, batch, upload, item, limits, dxp_id)
        except GatewayError as exc:
            rows[item.position] = {**_rejected(upload, item, exc), "processed_at": at}
            continue
        except Exception:  # a bug must not hold up the rest of the batch
            log.exception("batch %s item %s failed unexpectedly", batch["id"], item.position)
            rows[item.position] = {**_rejected(upload, item, Unexpected()), "processed_at": at}
            continue
        submitted.append(item)
        submissions.append(Submission(body, media, f"batch:{batch['id']}:{item.position}"))
    outcomes = declare_many(rt, batch["org_id"], submissions)
    stop = next(
        (n for n, o in enumerate(outcomes) if isinstance(o, GatewayError) and o.status == 503),
        None,
    )
    error = None
    if stop is not None:
        error = outcomes[stop]
        assert isinstance(error, GatewayError)
        outcomes = outcomes[:stop]
        items = [i for i in items if i.position < submitted[stop].position]
    for item, outcome in zip(submitted, outcomes, strict=False):
        rows[item.position] = _result(upload, item, outcome, at)
    return [rows[i.position] for i in items if i.position in rows], error


def _flush(
    rt: Runtime, batch_id: str, chunk: int, results: list[dict[str, Any]], lease: float
) -> None:
    """Record results, bring the batch's counters up to date, renew the chunk's lease."""
    with rt.engine.begin() as conn:
        store.record_items(conn, batch_id, results)
        store.lock_batch(conn, batch_id)
        n = store.counts(conn, batch_id)
        store.update_batch(
            conn,
            batch_id,
            processed=n.get("accepted", 0) + n.get("rejected", 0),
            accepted=n.get("accepted", 0),
            rejected=n.get("rejected", 0),
        )
        store.renew_chunk(conn, batch_id, chunk, lease)
    results.clear()


def _read_again(rt: Runtime, batch: Any, limits: BatchLimits) -> Upload | None:
    """The upload as it was read when accepted; None (and the batch failed) if it no longer
    can be, e.g. because the limits were lowered since."""
    try:
        return read_upload(
            batch["upload"],
            KIND_MEDIA[batch["kind"]],
            batch["filename"] or "",
            batch["template"],
            limits,
        )
    except GatewayError as exc:
        with rt.engine.begin() as conn:
            store.fail_batch(conn, batch["id"], exc.detail)
        return None


def process_chunk(rt: Runtime, batch_id: str, chunk: int, limits: BatchLimits, lease: float) -> str:
    """Declare the pending items of one chunk of a batch; returns what happened (for logs)."""
    with rt.engine.begin() as conn:
        claimed = store.claim_chunk(conn, batch_id, chunk, lease)
    if claimed is None:
        return "not claimed (done, or another worker holds it)"
    with rt.engine.connect() as conn:
        batch = store.get_batch(conn, batch_id, with_upload=True)
        assert batch is not None
        first, last = claimed["first_position"], claimed["last_position"]
        pending = store.pending_positions(conn, batch_id, first, last)
        dxp_id = repo.org_dxp_id(conn, batch["org_id"])
    upload = _read_again(rt, batch, limits)
    if upload is None:
        return "failed: the upload can no longer be read"
    todo = [i for i in upload.items[first - 1 : last] if i.position in pending]
    try:
        for start in range(0, len(todo), FLUSH_ITEMS):
            results, stop = declare_items(
                rt, batch, upload, todo[start : start + FLUSH_ITEMS], limits, dxp_id
            )
            _flush(rt, batch_id, chunk, results, lease)
            if stop is not None:
                raise stop
    except (GatewayError, OperationalError):
        # Keep what is done; the relay gives the rest to a worker after a short pause.
        with rt.engine.begin() as conn:
            store.release_chunk(conn, batch_id, chunk, RETRY_SECONDS)
        raise
    with rt.engine.begin() as conn:
        done = store.finish_chunk(conn, batch_id, chunk)
    return f"chunk {chunk}: {len(pending)} item(s) declared or refused" + (
        "; batch done" if done else ""
    )


def process_batch(rt: Runtime, batch_id: str, limits: BatchLimits, lease: float) -> str:
    """Every chunk of a batch in turn, in this process (tests, and a worker with no peers)."""
    with rt.engine.connect() as conn:
        chunks = store.chunks_of(conn, batch_id)
    return "; ".join(process_chunk(rt, batch_id, c, limits, lease) for c in chunks)
