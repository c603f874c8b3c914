"""The clearance state machine, pure domain: receipt codes, phases, derived status, transitions."""

from __future__ import annotations

import itertools
import random

import pytest

from gateway.domain.clearance import (
    TRANSITIONS,
    IllegalTransition,
    apply_receipt,
    check_transition,
    derive_status,
)
from gateway.domain.statuses import (
    TERMINAL_PHASES,
    TERMINAL_STATUSES,
    Authority,
    DeclarationStatus,
    Phase,
    phase_of,
)

S = DeclarationStatus
C, INSP, P = Authority.CUSTOMS, Authority.INSPECTION, Authority.PORT

DOCUMENTED_CODES = {
    "1": Phase.DECLARING,
    "2": Phase.DECLARING,
    "3": Phase.DECLARING,
    "4": Phase.REJECTED,
    "100": Phase.REJECTED,
    "120": Phase.STORED,
    "300": Phase.REVIEW,
    "399": Phase.REVIEW,
    "500": Phase.INSPECTION,
    "501": Phase.HELD,
    "502": Phase.HELD,
    "503": Phase.HELD,
    "599": Phase.HELD,
    "700": Phase.RETURNED,
    "800": Phase.RELEASED,
    "899": Phase.CLOSED,
}


# --- phase_of -------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "phase"), sorted(DOCUMENTED_CODES.items()))
def test_every_documented_receipt_code_maps_to_its_phase(code: str, phase: Phase) -> None:
    assert phase_of(code) is phase


@pytest.mark.parametrize("code", ["-1", "-100", "-301010", " -2 "])
def test_negative_codes_are_processing_errors_and_reject(code: str) -> None:
    assert phase_of(code) is Phase.REJECTED


def test_surrounding_whitespace_is_ignored() -> None:
    assert phase_of(" 800\n") is Phase.RELEASED


@pytest.mark.parametrize("code", ["0", "5", "99", "101", "200", "400", "600", "801", "900", "9999"])
def test_an_unknown_numeric_code_is_a_value_error(code: str) -> None:
    with pytest.raises(ValueError, match="not a known receipt code"):
        phase_of(code)


@pytest.mark.parametrize("code", ["", "  ", "abc", "8OO", "1.5", "120a", "--1"])
def test_a_code_that_is_not_a_number_is_a_value_error(code: str) -> None:
    with pytest.raises(ValueError, match="not a number"):
        phase_of(code)


# --- apply_receipt --------------------------------------------------------------------------


def test_a_first_receipt_moves_the_authority_forward() -> None:
    decision = apply_receipt(Phase.NONE, "2")
    assert decision.applies
    assert decision.phase is Phase.DECLARING


def test_the_green_path_2_120_800_899_applies_every_step() -> None:
    phase = Phase.NONE
    seen = []
    for code in ["2", "120", "800", "899"]:
        decision = apply_receipt(phase, code)
        assert decision.applies, code
        phase = decision.phase
        seen.append(phase)
    assert seen == [Phase.DECLARING, Phase.STORED, Phase.RELEASED, Phase.CLOSED]


def test_a_late_120_after_800_does_not_move_the_authority_backwards() -> None:
    decision = apply_receipt(Phase.RELEASED, "120")
    assert not decision.applies
    assert decision.phase is Phase.RELEASED
    assert "stale" in decision.reason


@pytest.mark.parametrize("code", ["1", "2", "3", "120", "300", "399", "500"])
def test_earlier_phases_never_apply_after_release(code: str) -> None:
    decision = apply_receipt(Phase.RELEASED, code)
    assert (decision.applies, decision.phase) == (False, Phase.RELEASED)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_PHASES))
@pytest.mark.parametrize("code", [*sorted(DOCUMENTED_CODES), "-1"])
def test_a_terminal_phase_absorbs_every_later_receipt(terminal: Phase, code: str) -> None:
    decision = apply_receipt(terminal, code)
    assert not decision.applies
    assert decision.phase is terminal
    assert "final" in decision.reason


@pytest.mark.parametrize(("code", "phase"), sorted(DOCUMENTED_CODES.items()))
def test_a_duplicate_receipt_does_not_apply_twice(code: str, phase: Phase) -> None:
    decision = apply_receipt(phase, code)
    assert not decision.applies
    assert decision.phase is phase


def test_a_second_detention_code_while_held_does_not_apply() -> None:
    assert not apply_receipt(Phase.HELD, "599").applies


def test_held_may_go_back_to_inspection() -> None:
    decision = apply_receipt(Phase.HELD, "500")
    assert decision.applies
    assert decision.phase is Phase.INSPECTION


def test_inspection_may_become_held() -> None:
    decision = apply_receipt(Phase.INSPECTION, "501")
    assert (decision.applies, decision.phase) == (True, Phase.HELD)


def test_released_may_not_go_back_to_inspection_or_held() -> None:
    assert not apply_receipt(Phase.RELEASED, "500").applies
    assert not apply_receipt(Phase.RELEASED, "501").applies


def test_apply_receipt_refuses_an_unknown_code_with_value_error() -> None:
    with pytest.raises(ValueError):
        apply_receipt(Phase.NONE, "42")


# --- derive_status --------------------------------------------------------------------------


def test_one_rejection_wins_over_every_other_authority() -> None:
    phases = {C: Phase.RELEASED, INSP: Phase.REJECTED, P: Phase.HELD}
    assert derive_status(phases, all_sent=True, current=S.HELD) is S.REJECTED


def test_a_return_wins_over_hold_and_release() -> None:
    phases = {C: Phase.RETURNED, INSP: Phase.HELD, P: Phase.RELEASED}
    assert derive_status(phases, all_sent=True, current=S.HELD) is S.RETURNED


def test_one_detention_makes_the_declaration_held() -> None:
    phases = {C: Phase.RELEASED, INSP: Phase.HELD}
    assert derive_status(phases, all_sent=True, current=S.UNDER_REVIEW) is S.HELD


def test_hold_wins_over_inspection() -> None:
    phases = {C: Phase.INSPECTION, INSP: Phase.HELD}
    assert derive_status(phases, all_sent=True, current=S.INSPECTION) is S.HELD


def test_one_open_inspection_makes_the_declaration_inspection() -> None:
    phases = {C: Phase.RELEASED, INSP: Phase.INSPECTION}
    assert derive_status(phases, all_sent=True, current=S.UNDER_REVIEW) is S.INSPECTION


def test_released_only_when_every_routed_authority_released() -> None:
    partly = {C: Phase.RELEASED, INSP: Phase.STORED}
    assert derive_status(partly, all_sent=True, current=S.UNDER_REVIEW) is S.UNDER_REVIEW
    fully = {C: Phase.RELEASED, INSP: Phase.RELEASED}
    assert derive_status(fully, all_sent=True, current=S.UNDER_REVIEW) is S.RELEASED


def test_released_and_closed_together_count_as_released() -> None:
    phases = {C: Phase.CLOSED, INSP: Phase.RELEASED}
    assert derive_status(phases, all_sent=True, current=S.RELEASED) is S.RELEASED


def test_closed_only_when_every_routed_authority_closed() -> None:
    phases = {C: Phase.CLOSED, INSP: Phase.CLOSED}
    assert derive_status(phases, all_sent=True, current=S.RELEASED) is S.CLOSED


def test_an_authority_that_has_not_answered_holds_back_release() -> None:
    phases = {C: Phase.RELEASED, INSP: Phase.NONE}
    assert derive_status(phases, all_sent=True, current=S.UNDER_REVIEW) is S.UNDER_REVIEW


@pytest.mark.parametrize("phase", [Phase.STORED, Phase.REVIEW])
def test_stored_or_in_review_is_under_review(phase: Phase) -> None:
    phases = {C: phase, INSP: Phase.DECLARING}
    assert derive_status(phases, all_sent=True, current=S.SUBMITTED) is S.UNDER_REVIEW


def test_submitted_once_every_dispatch_is_sent() -> None:
    phases = {C: Phase.NONE, INSP: Phase.DECLARING}
    assert derive_status(phases, all_sent=True, current=S.ACCEPTED) is S.SUBMITTED


def test_still_accepted_while_a_dispatch_is_unsent() -> None:
    phases = {C: Phase.DECLARING, INSP: Phase.NONE}
    assert derive_status(phases, all_sent=False, current=S.ACCEPTED) is S.ACCEPTED


def test_all_sent_does_not_pull_a_later_status_back_to_submitted() -> None:
    phases = {C: Phase.DECLARING}
    assert derive_status(phases, all_sent=True, current=S.UNDER_REVIEW) is S.UNDER_REVIEW


def test_no_routed_authority_keeps_the_current_status() -> None:
    assert derive_status({}, all_sent=True, current=S.ACCEPTED) is S.ACCEPTED


@pytest.mark.parametrize(
    "phases",
    [
        {C: Phase.REJECTED},
        {C: Phase.RELEASED, INSP: Phase.RELEASED},
        {C: Phase.HELD},
        {C: Phase.CLOSED},
    ],
)
def test_cancelled_is_kept_whatever_the_authorities_say(phases: dict) -> None:
    assert derive_status(phases, all_sent=True, current=S.CANCELLED) is S.CANCELLED


# --- check_transition -----------------------------------------------------------------------


ALLOWED = sorted((cur, nxt) for cur, nexts in TRANSITIONS.items() for nxt in nexts)
REFUSED = sorted(
    (cur, nxt)
    for cur in DeclarationStatus
    for nxt in DeclarationStatus
    if cur != nxt and nxt not in TRANSITIONS[cur]
)


def test_the_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(DeclarationStatus)


@pytest.mark.parametrize(("current", "proposed"), ALLOWED)
def test_every_transition_in_the_table_is_allowed(current: S, proposed: S) -> None:
    check_transition(current, proposed)


@pytest.mark.parametrize(("current", "proposed"), REFUSED)
def test_every_transition_outside_the_table_is_refused(current: S, proposed: S) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, proposed)
    assert (info.value.current, info.value.proposed) == (current, proposed)


@pytest.mark.parametrize("status", list(DeclarationStatus))
def test_staying_put_is_always_allowed(status: S) -> None:
    check_transition(status, status)


def test_released_may_not_go_back_to_accepted() -> None:
    with pytest.raises(IllegalTransition, match="released -> accepted"):
        check_transition(S.RELEASED, S.ACCEPTED)


@pytest.mark.parametrize("proposed", [s for s in DeclarationStatus if s is not S.REJECTED])
def test_rejected_goes_nowhere(proposed: S) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(S.REJECTED, proposed)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
def test_terminal_statuses_have_no_way_out(terminal: S) -> None:
    assert TRANSITIONS[terminal] == frozenset()


def test_the_green_path_is_allowed_end_to_end() -> None:
    path = [S.ACCEPTED, S.SUBMITTED, S.UNDER_REVIEW, S.INSPECTION, S.RELEASED, S.CLOSED]
    for current, proposed in itertools.pairwise(path):
        check_transition(current, proposed)


# --- randomized receipt sequences over one authority -----------------------------------------

SEED = 20240601
RUNS = 3000
POOL = [*DOCUMENTED_CODES, "-1", "-301010"]
STORIES = [
    ["1", "2", "3", "120", "800", "899"],
    ["2", "120", "300", "399", "800", "899"],
    ["2", "120", "500", "501", "500", "800", "899"],
    ["2", "120", "300", "700"],
    ["2", "100"],
    ["2", "120", "503", "599", "700"],
    ["4"],
    ["2", "-301010"],
]


def _random_sequences(seed: int = SEED, runs: int = RUNS) -> list[list[str]]:
    """Plausible stories plus noise, with duplicates, shuffled (receipts arrive in any order)."""
    rng = random.Random(seed)
    out = []
    for _ in range(runs):
        seq = list(rng.choice(STORIES)) if rng.random() < 0.6 else []
        seq += [rng.choice(POOL) for _ in range(rng.randint(0, 6))]
        if not seq:
            seq = [rng.choice(POOL)]
        seq += rng.choices(seq, k=rng.randint(0, len(seq)))  # duplicates
        if rng.random() < 0.8:
            rng.shuffle(seq)
        out.append(seq)
    return out


SEQUENCES = _random_sequences()


def test_the_random_sequences_are_deterministic_and_varied() -> None:
    assert _random_sequences() == SEQUENCES
    assert {code for seq in SEQUENCES for code in seq} == set(POOL)
    assert any(len(seq) != len(set(seq)) for seq in SEQUENCES)


def test_random_receipt_sequences_keep_the_phase_invariants() -> None:
    applied_total = 0
    for seq in SEQUENCES:
        phase = Phase.NONE
        last_applied = Phase.NONE
        status = S.ACCEPTED
        for code in seq:
            before = phase
            decision = apply_receipt(before, code)
            if before in TERMINAL_PHASES:
                assert not decision.applies, (seq, code)
                assert decision.phase is before, (seq, code)
            if decision.applies:
                applied_total += 1
                assert decision.phase is phase_of(code), (seq, code)
                assert decision.phase > before or (
                    before is Phase.HELD and decision.phase is Phase.INSPECTION
                ), (seq, before, code)
                last_applied = decision.phase
            else:
                assert decision.phase is before, (seq, code)
            phase = decision.phase
            status = derive_status({C: phase}, all_sent=True, current=status)
        if status is S.RELEASED:
            assert last_applied >= Phase.RELEASED, seq
        assert phase is last_applied, seq
    # The property above is only worth something if the sequences applied receipts.
    assert applied_total > RUNS


def test_once_terminal_the_phase_never_changes_in_random_sequences() -> None:
    reached_terminal = 0
    for seq in SEQUENCES:
        phase = Phase.NONE
        final: Phase | None = None
        for code in seq:
            phase = apply_receipt(phase, code).phase
            if final is not None:
                assert phase is final, (seq, code)
            elif phase in TERMINAL_PHASES:
                final = phase
        reached_terminal += final is not None
    assert reached_terminal > RUNS // 4


def _illegal_steps(sequences: list[list[str]]) -> dict[tuple[S, S], list[str]]:
    """Walk each sequence like services.status.refresh_status; collect refused steps."""
    illegal: dict[tuple[S, S], list[str]] = {}
    for seq in sequences:
        phase = Phase.NONE
        status = S.ACCEPTED
        for code in seq:
            phase = apply_receipt(phase, code).phase
            proposed = derive_status({C: phase}, all_sent=True, current=status)
            try:
                check_transition(status, proposed)
            except IllegalTransition:
                illegal.setdefault((status, proposed), seq)
                continue  # refresh_status records it and keeps the current status
            status = proposed
    return illegal


def _final_status(seq: list[str]) -> S:
    status = S.ACCEPTED
    phase = Phase.NONE
    for code in seq:
        phase = apply_receipt(phase, code).phase
        status = derive_status({C: phase}, all_sent=True, current=status)
    return status


def test_walking_derived_statuses_always_satisfies_the_transition_table() -> None:
    illegal = _illegal_steps(SEQUENCES)
    assert illegal == {}, {f"{a} -> {b}": seq for (a, b), seq in illegal.items()}


@pytest.mark.parametrize(
    ("seq", "final"),
    [
        (["3", "899", "800"], S.CLOSED),
        (["2", "120", "700"], S.RETURNED),
        (["2", "120", "800", "100", "899"], S.CLOSED),
        (["2", "120", "501", "899"], S.CLOSED),
        (["2", "120", "800", "-1"], S.RELEASED),
    ],
)
def test_out_of_order_receipts_end_where_the_authority_ended(seq: list[str], final: S) -> None:
    assert _illegal_steps([seq]) == {}
    assert _final_status(seq) is final


def test_a_rejection_after_release_is_not_applied() -> None:
    decision = apply_receipt(Phase.RELEASED, "100")
    assert not decision.applies and decision.phase is Phase.RELEASED


def test_inspection_can_only_move_into_or_out_of_inspection():
    """The receipt path skips reading the joint inspection when may_touch_inspection says
    no: over every pair of phases and every record, the step is then NONE."""
    from gateway.domain.inspection import (
        InspectionStep,
        JointInspection,
        inspection_step,
        may_touch_inspection,
    )

    records = [
        None,
        JointInspection(frozenset({C}), {}),
        JointInspection(frozenset({C, INSP}), {C: "800"}),
    ]
    touched = 0
    for before, after in itertools.product(Phase, repeat=2):
        steps = {inspection_step(r, a, before, after) for r in records for a in (C, INSP)}
        if not may_touch_inspection(before, after):
            assert steps == {InspectionStep.NONE}, (before, after)
        else:
            touched += steps != {InspectionStep.NONE}
    assert touched == 2 * (len(Phase) - 1)  # into inspection from any other, and out


def test_the_status_depends_on_the_dispatches_only_before_any_authority_answered():
    """refresh_status reads the dispatches' states only when all_sent changes the result."""
    differs = []
    for (customs, inspection), current in itertools.product(itertools.product(Phase, repeat=2), S):
        phases = {C: customs, INSP: inspection}
        sent, unsent = (
            derive_status(phases, all_sent=flag, current=current) for flag in (True, False)
        )
        if sent != unsent:
            differs.append(max(customs, inspection))
    assert differs  # a fresh declaration becomes submitted once every dispatch went out
    assert all(highest < Phase.STORED for highest in differs)
