"""Declare once: validate, sign and store a message, then ring the workers.

Everything the declaration needs later (signed bytes, per-authority status rows, the first
events and one dispatch per authority) is written in one transaction, so a crash at any
point either loses nothing or stores nothing; the doorbell rings only after the commit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from lxml import etree
from sqlalchemy.exc import IntegrityError

from gateway.domain.audit import Actor
from gateway.domain.documents import BUSINESS_KEY_FIELDS, DocumentKeys, traced_numbers
from gateway.domain.errors import (
    BusinessRuleViolation,
    DuplicateDeclaration,
    IdempotencyKeyReused,
    SigningFailed,
    UnknownMessageType,
    Violation,
)
from gateway.domain.statuses import DeclarationStatus, Phase
from gateway.persistence import repository as repo
from gateway.persistence.ids import new_id
from gateway.persistence.visibility import insert_parties
from gateway.services import audit
from gateway.services.prematch import prematch
from gateway.services.runtime import Runtime
from gateway.services.tax_quota import buyer_of, check_quota, estimate
from gateway.services.validate import body_format, check_body
from gateway.xml.documents import DocumentElements, message_guid
from gateway.xml.port_messages import Consignment, build_manifest
from schemas.registry import MessageSpec
from signing.errors import SignatureError
from signing.xmldsig import remove_signature, sign_enveloped


@dataclass(frozen=True)
class DeclarationRef:
    id: str
    position: int
    doc_guid: str
    status: str


@dataclass(frozen=True)
class Accepted:
    """The answer to a submission; ``replayed`` when an Idempotency-Key matched."""

    message_id: str
    message_type: str
    guid: str
    declarations: list[DeclarationRef]
    replayed: bool = False


def _replay(rt: Runtime, org_id: str, key: str, body_hash: str) -> Accepted | None:
    with rt.engine.connect() as conn:
        found = repo.find_message_by_idempotency_key(conn, org_id, key)
        return None if found is None else replayed(conn, found, body_hash)


def replayed(conn: Any, found: Any, body_hash: str) -> Accepted:
    """The answer to a key used before: the message it made, if the body is the same."""
    if found["body_hash"] != body_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used before with a different body.",
            violations=[
                Violation("/", "idempotency.key_reused", "send the original body, or use a new key")
            ],
            extra={"message_id": found["id"]},
        )
    return _accepted_from_db(conn, found["id"], replayed=True)


def _accepted_from_db(conn: Any, message_id: str, *, replayed: bool) -> Accepted:
    msg = repo.get_message(conn, message_id)
    assert msg is not None
    decls = repo.declarations_of_message(conn, message_id)
    return Accepted(
        msg["id"],
        msg["type"],
        msg["guid"],
        [DeclarationRef(d["id"], d["position"], d["doc_guid"], d["status"]) for d in decls],
        replayed=replayed,
    )


def _check_not_declared(conn: Any, spec: MessageSpec, guid: str, docs: list[DocumentKeys]) -> None:
    existing = repo.find_message_by_guid(conn, guid)
    if existing is not None:
        raise DuplicateDeclaration(
            f"A message with guid {guid} was already declared.",
            violations=[
                Violation(
                    f"/{spec.root}/@guid",
                    "message.duplicate_guid",
                    "this message guid was declared before",
                    value=guid,
                )
            ],
            extra={
                "existing_message_id": existing["id"],
                "existing_declaration_ids": [
                    d["id"] for d in repo.declarations_of_message(conn, existing["id"])
                ],
            },
        )
    found = repo.find_declarations_by_guid(conn, spec.type, [d.guid for d in docs])
    if found:
        by_guid = {r["doc_guid"]: r["id"] for r in found}
        violations = [
            Violation(
                f"/{spec.root}/{spec.document}[{d.position}]/{spec.head}/guid",
                "document.already_declared",
                f"this document was already declared as {by_guid[d.guid]}",
                value=d.guid,
            )
            for d in docs
            if d.guid in by_guid
        ]
        raise DuplicateDeclaration(
            f"{len(violations)} document(s) in this message were already declared.",
            violations=violations,
            extra={"existing_declaration_id": found[0]["id"]},
        )


# logisticsNo is unique per logistics company within six months only.
REUSABLE_AFTER_SIX_MONTHS = frozenset({"CEB511", "CEB505"})
REUSE_AFTER = timedelta(days=183)


def _doc_path(spec: MessageSpec, doc: DocumentKeys, field: str) -> str:
    head = f"/{spec.head}" if spec.head else ""
    return f"/{spec.root}/{spec.document}[{doc.position}]{head}/{field}"


def _check_business_keys(conn: Any, spec: MessageSpec, docs: list[DocumentKeys]) -> dict[str, str]:
    """Declare once by business key: a new document must be new, a change (appType 2) or
    deletion (3) must follow an earlier one not yet accepted by customs (120). Returns the
    declarations that changes supersede, by business key."""
    keys = [d.business_key for d in docs if d.business_key]
    active = {r["business_key"]: r for r in repo.find_active_by_business_keys(conn, keys)}
    # A logistics company may reuse a waybill number after six months (DESIGN.md §3): the
    # old declaration gives its key up instead of blocking the new one.
    horizon = repo.now() - REUSE_AFTER
    for key, row in list(active.items()):
        if row["type"] in REUSABLE_AFTER_SIX_MONTHS and repo.as_utc(row["created_at"]) < horizon:
            repo.update_declaration(conn, row["id"], business_key=None)
            repo.insert_events(
                conn,
                [
                    dict(
                        declaration_id=row["id"],
                        at=repo.now(),
                        kind="key_released",
                        source="gateway",
                        status=row["status"],
                        info=f"{key.split(':', 1)[-1]} reused by a new "
                        "declaration after six months",
                    )
                ],
            )
            del active[key]
    duplicates, refused, superseded = [], [], {}
    for doc in docs:
        prior = active.get(doc.business_key) if doc.business_key else None
        field = BUSINESS_KEY_FIELDS[spec.type][-1] if doc.business_key else "guid"
        if doc.app_type == "1" and prior is not None:
            duplicates.append((doc, prior))
        elif doc.app_type in ("2", "3") and prior is None:
            refused.append(
                Violation(
                    _doc_path(spec, doc, "appType"),
                    "rule.change.unknown",
                    f"appType {doc.app_type} changes or deletes an earlier declaration, but none "
                    f"with this {field} is open.",
                    value=doc.app_type,
                    message_zh="变更/删除的单证不存在或已结束。",
                )
            )
        elif doc.app_type in ("2", "3") and prior is not None:
            if repo.max_phase(conn, prior["id"]) >= Phase.STORED:
                refused.append(
                    Violation(
                        _doc_path(spec, doc, "appType"),
                        "rule.change.after_acceptance",
                        f"{prior['id']} was already accepted by customs (120): a change is allowed "
                        "only before acceptance; cancel it with CEB623 instead.",
                        value=doc.app_type,
                        message_zh="海关已审结（120）的单证不能变更，请申请撤销（CEB623）。",
                    )
                )
            else:
                superseded[prior["id"]] = doc.business_key or ""
    if duplicates:
        raise DuplicateDeclaration(
            f"{len(duplicates)} document(s) in this message were already declared.",
            violations=[
                Violation(
                    _doc_path(spec, d, BUSINESS_KEY_FIELDS[spec.type][-1]),
                    "document.duplicate_business_key",
                    f"already declared as {p['id']} (send appType 2 to change it)",
                    value=(d.business_key or "").split(":", 1)[-1],
                )
                for d, p in duplicates
            ],
            extra={
                "existing_declaration_id": duplicates[0][1]["id"],
                "existing_declaration_ids": [p["id"] for _d, p in duplicates],
            },
        )
    if refused:
        raise BusinessRuleViolation(
            f"{len(refused)} change(s) cannot be applied.", violations=refused
        )
    return superseded


def sign_message(rt: Runtime, org_id: str, root: etree._Element) -> tuple[bytes, str]:
    """Sign a private copy with the org's active key; returns the bytes and a description."""
    key, policy = rt.keys.signer_for(org_id)
    signed = etree.fromstring(etree.tostring(root))
    remove_signature(signed)
    try:
        sign_enveloped(signed, key, policy)
    except SignatureError as exc:
        raise SigningFailed(f"The gateway could not sign the message: {exc}") from None
    return (
        etree.tostring(signed, xml_declaration=True, encoding="UTF-8"),
        f"signed {policy.name}, key {key.key_name}",
    )


@dataclass(frozen=True)
class Checked:
    """A submission that passed every check needing no database: parsed, schema-valid,
    business-valid, a declaration (not a receipt)."""

    spec: MessageSpec
    root: etree._Element
    elements: list[DocumentElements]
    docs: list[DocumentKeys]
    raw: bytes  # the bytes kept: the body, or the XML a JSON body stands for
    body_hash: str
    guid: str
    idempotency_key: str | None


def check_submission(
    rt: Runtime, body: bytes, content_type: str, idempotency_key: str | None = None
) -> Checked:
    """Parse and validate a submission, or raise a GatewayError saying what is wrong."""
    fmt = body_format(content_type)
    checked = check_body(body, fmt, rt.limits)
    root, spec = checked.root, checked.spec
    if spec.kind != "declaration":
        raise UnknownMessageType(
            f"{spec.type} is a receipt, not a declaration; authorities send receipts to "
            "/api/v1/receipts.",
            violations=[
                Violation(
                    f"/{spec.root}",
                    "message.not_a_declaration",
                    f"{spec.type} ({spec.title}) cannot be declared",
                )
            ],
        )
    checked.raise_if_invalid()
    raw = body if fmt == "xml" else etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Checked(
        spec,
        root,
        checked.elements,
        checked.documents,
        raw,
        hashlib.sha256(body).hexdigest(),
        message_guid(root),
        idempotency_key,
    )


def declare(
    rt: Runtime,
    org_id: str,
    body: bytes,
    content_type: str,
    idempotency_key: str | None = None,
    *,
    actor: Actor | None = None,
    action: str = "declaration.submitted",
) -> Accepted:
    """Accept one CEB message (1..100 documents), or raise a GatewayError saying why not.
    The audit trail records ``action`` by ``actor`` (the organisation, by default)."""
    body_format(content_type)  # an unsupported media type says so before any lookup
    body_hash = hashlib.sha256(body).hexdigest()
    if idempotency_key:
        replay = _replay(rt, org_id, idempotency_key, body_hash)
        if replay is not None:
            return replay
    checked = check_submission(rt, body, content_type, idempotency_key)
    prematch(rt, checked.spec, checked.elements)
    signature = sign_message(rt, org_id, checked.root)
    try:
        return _store(rt, org_id, checked, signature, (actor or Actor("org", org_id), action))
    except (DuplicateDeclaration, IntegrityError) as exc:
        # A twin with the same Idempotency-Key committed after our first look (between it
        # and our transaction: a DuplicateDeclaration; during it: an IntegrityError, found
        # by the fault suite's concurrent twins): a replay, not a duplicate.
        replay = _replay(rt, org_id, idempotency_key, body_hash) if idempotency_key else None
        if replay is not None:
            return replay
        if isinstance(exc, DuplicateDeclaration):
            raise
        # Another submission won the race: answer as the loser of a duplicate would.
        with rt.engine.connect() as conn:
            _check_not_declared(conn, checked.spec, checked.guid, checked.docs)
            _check_business_keys(conn, checked.spec, checked.docs)
        raise


@dataclass
class Plan:
    """Everything one accepted message writes, built before the transaction opens."""

    message_id: str
    declarations: list[dict[str, Any]]
    statuses: list[dict[str, Any]]
    events: list[dict[str, Any]]
    dispatches: list[dict[str, Any]]
    quota: list[tuple[int, str | None, Any]]  # (position, buyer key, tax estimate)
    numbers: list[dict[str, Any]] = field(default_factory=list)  # for tracing


def _event(declaration_id: str, at: Any, kind: str, info: str) -> dict[str, Any]:
    return dict(
        declaration_id=declaration_id,
        at=at,
        kind=kind,
        source="gateway",
        status="accepted",
        info=info,
    )


def logistics_numbers(rt: Runtime, checked: Checked) -> list[str]:
    """The consignments whose arrival the plan needs to know (none if no port is routed)."""
    if not rt.rules.needs_port(checked.spec.type):
        return []
    return [d.logistics_no for d in checked.docs if d.logistics_no]


def plan_writes(
    rt: Runtime, org_id: str, checked: Checked, signed_by: str, arrived: dict[str, Any]
) -> Plan:
    """The rows of an accepted message (and its signed port manifest); ``arrived`` holds
    the port's arrival times of its consignments (see logistics_numbers)."""
    spec, elements, docs = checked.spec, checked.elements, checked.docs
    at = repo.now()
    plan = Plan(new_id("msg"), [], [], [], [], [])
    views = {d.position: d.view for d in elements}
    port = rt.rules.needs_port(spec.type)
    authorities: list[str] = []
    for doc in docs:
        view = views[doc.position]
        routes = [
            a.value
            for a in rt.rules.clearance_routes(
                spec.type, [line.get("gcode", "") for line in view.lines]
            )
        ]
        authorities += [a for a in routes if a not in authorities]
        did = new_id("dcl")
        arrival = arrived.get(doc.logistics_no or "")
        tax, buyer = estimate(rt, view), buyer_of(rt, view)
        plan.quota.append((doc.position, buyer, tax))
        plan.declarations.append(
            dict(
                id=did,
                message_id=plan.message_id,
                org_id=org_id,
                position=doc.position,
                type=spec.type,
                doc_guid=doc.guid,
                status=DeclarationStatus.ACCEPTED.value,
                order_no=doc.order_no,
                logistics_no=doc.logistics_no,
                cop_no=doc.cop_no,
                business_key=doc.business_key,
                app_type=doc.app_type,
                codes=list(doc.codes),
                routes=routes + (["port"] if port else []),
                requires_arrival=int(port),
                arrived_at=arrival,
                created_at=at,
                updated_at=at,
                buyer_key=buyer,
                tax={"estimate": tax.as_dict()} if tax is not None else None,
            )
        )
        plan.statuses += [
            dict(declaration_id=did, authority=a, phase=int(Phase.NONE), updated_at=at)
            for a in routes
        ]
        plan.numbers += [
            dict(declaration_id=did, kind=kind, number=number)
            for kind, number in traced_numbers(view)
        ]
        routed = ", ".join(routes) + ("; manifest to the port" if port else "")
        plan.events += [
            _event(
                did,
                at,
                "accepted",
                f"valid {spec.type}, document {doc.position} of {len(docs)}; routed to {routed}",
            ),
            _event(did, at, "signed", signed_by),
        ]
        if port and arrival is not None:
            plan.events.append(
                _event(
                    did,
                    at,
                    "arrived",
                    "the port reported arrival before the declaration (not advance)",
                )
            )
    due = at + timedelta(seconds=rt.doorbell_grace)
    plan.dispatches = [
        dict(
            id=new_id("dsp"),
            message_id=plan.message_id,
            authority=a,
            kind="declaration",
            state="pending",
            attempts=0,
            next_attempt_at=due,
            created_at=at,
        )
        for a in authorities
    ]
    if port:
        manifest = _signed_manifest(rt, views, docs, arrived)
        plan.dispatches.append(
            dict(
                id=new_id("dsp"),
                message_id=plan.message_id,
                authority="port",
                kind="manifest",
                msg_type="PortManifest",
                payload=manifest,
                state="pending",
                attempts=0,
                next_attempt_at=due,
                created_at=at,
            )
        )
    return plan


def arrivals(rt: Runtime, logistics_nos: list[str]) -> dict[str, Any]:
    if not logistics_nos:
        return {}
    with rt.engine.connect() as conn:
        return repo.arrivals_of(conn, logistics_nos)


def _signed_manifest(
    rt: Runtime, views: dict[int, Any], docs: list[DocumentKeys], arrived: dict[str, Any]
) -> bytes:
    heads = [views[d.position].head for d in docs]
    consignments = [
        Consignment(
            logistics_no=h.get("logisticsNo", ""),
            bill_no=h.get("billNo"),
            invt_no=h.get("invtNo"),
            traf_mode=h.get("trafMode"),
            traf_no=h.get("trafNo"),
            voyage_no=h.get("voyageNo"),
            pack_no=h.get("packNo"),
            gross_weight=h.get("grossWeight"),
            advance=h.get("logisticsNo") not in arrived,
        )
        for h in heads
    ]
    port_code = heads[0].get("portCode") or "0000"
    return rt.sign_as_gateway(build_manifest(port_code, consignments))


@dataclass(frozen=True)
class Stored:
    """One message as written: its checks passed in this transaction."""

    org_id: str
    checked: Checked
    signed: bytes
    plan: Plan
    audited: tuple[Actor, str]
    superseded: tuple[str, ...] = ()


def write_accepted(conn: Any, items: list[Stored]) -> None:
    """Write accepted messages, many at once (one statement per table, whatever their
    number), after their checks passed in the same transaction."""
    if not items:
        return
    repo.insert_messages(
        conn,
        [
            dict(
                id=s.plan.message_id,
                org_id=s.org_id,
                type=s.checked.spec.type,
                guid=s.checked.guid,
                version=s.checked.root.get("version", ""),
                idempotency_key=s.checked.idempotency_key,
                body_hash=s.checked.body_hash,
                raw_xml=s.checked.raw,
                signed_xml=s.signed,
            )
            for s in items
        ],
    )
    declarations = [d for s in items for d in s.plan.declarations]
    repo.insert_declarations(conn, declarations)
    insert_parties(conn, declarations)  # who may see them
    repo.insert_authority_statuses(conn, [r for s in items for r in s.plan.statuses])
    repo.insert_declaration_numbers(conn, [r for s in items for r in s.plan.numbers])
    repo.insert_events(conn, [r for s in items for r in s.plan.events])
    repo.insert_dispatches(conn, [r for s in items for r in s.plan.dispatches])
    audit.record_many(
        conn,
        [
            audit.Record(
                *s.audited,
                (s.plan.message_id, *(d["id"] for d in s.plan.declarations), *s.superseded),
                {
                    "type": s.checked.spec.type,
                    "documents": len(s.plan.declarations),
                    "guid": s.checked.guid,
                },
            )
            for s in items
        ],
    )


def accepted(stored: Stored) -> Accepted:
    plan = stored.plan
    return Accepted(
        plan.message_id,
        stored.checked.spec.type,
        stored.checked.guid,
        [
            DeclarationRef(r["id"], r["position"], r["doc_guid"], r["status"])
            for r in plan.declarations
        ],
    )


def _supersede(conn: Any, superseded: dict[str, str], message_id: str, at: Any) -> None:
    """Cancel the declarations a change replaces (first: the partial unique index allows
    one open declaration per business key)."""
    for old_id in superseded:
        repo.update_declaration(conn, old_id, status=DeclarationStatus.CANCELLED.value)
        repo.insert_events(
            conn,
            [
                dict(
                    declaration_id=old_id,
                    at=at,
                    kind="superseded",
                    source="gateway",
                    status="cancelled",
                    info=f"replaced by a change in message {message_id}",
                )
            ],
        )


def _store(
    rt: Runtime,
    org_id: str,
    checked: Checked,
    signature: tuple[bytes, str],
    audited: tuple[Actor, str],
) -> Accepted:
    signed, signed_by = signature
    spec, docs = checked.spec, checked.docs
    arrived = arrivals(rt, logistics_numbers(rt, checked))
    plan = plan_writes(rt, org_id, checked, signed_by, arrived)
    at = plan.declarations[0]["created_at"] if plan.declarations else repo.now()
    with rt.engine.begin() as conn:
        _check_not_declared(conn, spec, checked.guid, docs)
        superseded = _check_business_keys(conn, spec, docs)
        check_quota(rt, conn, spec.root, spec.document or "", plan.quota, at)
        _supersede(conn, superseded, plan.message_id, at)
        stored = Stored(org_id, checked, signed, plan, audited, tuple(superseded))
        write_accepted(conn, [stored])
    rt.ring([r["id"] for r in plan.dispatches])
    return accepted(stored)
