"""The visibility rule and the access schema on PostgreSQL (the production database): the
migration, the parties written by declare, and the same answers as on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select

from gateway.bootstrap import build_runtime
from gateway.domain.access import Viewer
from gateway.examples import fresh_ceb621
from gateway.persistence import tables as t
from gateway.persistence.visibility import find_visible, visible_to
from gateway.provisioning import create_org, ensure_demo_org, init_db
from gateway.services.declare import declare
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from tests.e2e.postgres import postgres_url


@pytest.fixture
def pg_runtime(settings: Settings) -> Iterator[tuple[Settings, Runtime]]:
    with postgres_url("access") as url:
        s = replace(settings, database_url=url)
        init_db(s)
        rt = build_runtime(s)
        yield s, replace(rt, ring=lambda _ids: None)
        rt.engine.dispose()


def test_a_party_sees_by_code_and_a_stranger_sees_nothing_on_postgres(
    pg_runtime: tuple[Settings, Runtime],
):
    settings, rt = pg_runtime
    ensure_demo_org(settings)
    with rt.engine.connect() as conn:
        owner = conn.execute(select(t.organisations.c.id)).scalar_one()
    stranger, _ = create_org(settings, "Stranger", ["3301960009"], "DXPENT0000000077")
    platform_org, _ = create_org(settings, "Platform", ["1101110325"], "DXPENT0000000078")
    acc = declare(rt, owner, fresh_ceb621(2), "application/xml")
    ids = {d.id for d in acc.declarations}
    platform = Viewer("org_platform", ("1101110325",))  # the ebpCode of the example
    with rt.engine.connect() as conn:

        def seen(v: Viewer | str) -> set[str]:
            return {r[0] for r in conn.execute(select(t.declarations.c.id).where(visible_to(v)))}

        assert seen(Viewer(owner)) == ids
        assert seen(platform) == ids
        assert seen(platform_org) == ids and seen(stranger) == set()  # by org id alone
        assert seen(Viewer(stranger, ("3301960009",))) == set()
        first = sorted(ids)[0]
        assert find_visible(conn, platform, first, whole_message=True) is not None
        assert find_visible(conn, Viewer(stranger), first) is None
        parties = conn.execute(select(t.declaration_parties)).all()
    assert len(parties) == 2 * 3  # agent/cop, platform/ebc, logistics: three codes each
