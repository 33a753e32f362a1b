"""The registration codes and state machine (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdtu.errors import LocalProtocolError
from vdtu.modem.registration import (
    ERROR_STATE,
    HOME_TABLE,
    REGISTERED_STATS,
    REJECT_RULES,
    ROAMING_TABLE,
    T3402_S,
    EmmCause,
    EsmCause,
    NetMode,
    NetState,
    RegInput,
    Registration,
    RegStat,
    net_state,
)


def test_reg_stat_values_follow_3gpp_table() -> None:
    """RegStat has the 12 +CREG stat codes 0..11 of docs/spec/quec.md#4.13."""
    assert {stat.name: int(stat) for stat in RegStat} == {
        "NOT_REGISTERED": 0,
        "HOME": 1,
        "SEARCHING": 2,
        "DENIED": 3,
        "UNKNOWN": 4,
        "ROAMING": 5,
        "SMS_ONLY_HOME": 6,
        "SMS_ONLY_ROAMING": 7,
        "EMERGENCY_ATTACHED": 8,
        "CSFB_NOT_PREFERRED_HOME": 9,
        "CSFB_NOT_PREFERRED_ROAMING": 10,
        "EMERGENCY_ONLY": 11,
    }


def test_net_mode_values_follow_xgc_seed() -> None:
    """NetMode is the XGC netMode: 0 unregistered, 1 GSM, 2 EDGE, 3 TD, 4 LTE, 5 WCDMA."""
    assert [(mode.name, int(mode)) for mode in NetMode] == [
        ("UNREGISTERED", 0),
        ("GSM", 1),
        ("EDGE", 2),
        ("TD", 3),
        ("LTE", 4),
        ("WCDMA", 5),
    ]


@pytest.mark.parametrize("stat", list(RegStat))
def test_net_state_while_booting_is_init(stat: RegStat) -> None:
    """A modem that has not finished booting reports INIT whatever its stat."""
    assert net_state(False, stat) is NetState.INIT


@pytest.mark.parametrize("stat", list(RegStat))
def test_net_state_of_booted_modem(stat: RegStat) -> None:
    """A booted modem is REGISTERED exactly for stats 1, 5, 6, 7, 9, 10."""
    expected = NetState.REGISTERED if int(stat) in {1, 5, 6, 7, 9, 10} else NetState.UNREGISTER
    assert net_state(True, stat) is expected
    assert (stat in REGISTERED_STATS) == (expected is NetState.REGISTERED)


def test_net_state_wire_values() -> None:
    """NetState values are the XGC wire words."""
    assert [state.value for state in NetState] == ["INIT", "REGISTERED", "UNREGISTER"]


def test_home_search_path() -> None:
    """0 -> search -> 2 -> success -> 1 (home) for a home subscription."""
    machine = Registration()
    assert machine.state is RegStat.NOT_REGISTERED
    assert machine.process(RegInput.SEARCH_STARTED) is RegStat.SEARCHING
    assert machine.process(RegInput.SEARCH_SUCCEEDED) is RegStat.HOME
    assert machine.registered


def test_roaming_search_lands_on_roaming() -> None:
    """With roaming=True a successful search registers as roaming (5)."""
    machine = Registration(roaming=True)
    machine.process(RegInput.SEARCH_STARTED)
    assert machine.process(RegInput.SEARCH_SUCCEEDED) is RegStat.ROAMING
    assert machine.table is ROAMING_TABLE


def test_tables_differ_only_in_search_success() -> None:
    """The home and roaming tables have the same keys and differ only on SEARCH_SUCCEEDED."""
    assert HOME_TABLE.keys() == ROAMING_TABLE.keys()
    differing = {key for key in HOME_TABLE if HOME_TABLE[key] != ROAMING_TABLE[key]}
    assert differing == {(RegStat.SEARCHING, RegInput.SEARCH_SUCCEEDED)}


def test_denied_then_coverage_lost_searches() -> None:
    """A denied modem that loses coverage goes back to searching."""
    machine = Registration()
    machine.process(RegInput.SEARCH_STARTED)
    assert machine.process(RegInput.SEARCH_DENIED) is RegStat.DENIED
    assert machine.process(RegInput.COVERAGE_LOST) is RegStat.SEARCHING


@pytest.mark.parametrize("event", [RegInput.SIM_LOST, RegInput.RADIO_OFF])
@pytest.mark.parametrize("stat", list(RegStat))
def test_sim_lost_and_radio_off_always_deregister(stat: RegStat, event: RegInput) -> None:
    """SIM_LOST and RADIO_OFF lead to stat 0 from every stat."""
    machine = Registration(initial=stat)
    assert machine.process(event) is RegStat.NOT_REGISTERED


def test_coverage_lost_when_not_searching_stays_unregistered() -> None:
    """Without SIM or radio (stat 0), losing coverage changes nothing."""
    machine = Registration()
    assert machine.process(RegInput.COVERAGE_LOST) is RegStat.NOT_REGISTERED


def test_search_result_while_registered_is_an_error() -> None:
    """A search result while registered raises, naming both, and leaves the machine UNKNOWN."""
    machine = Registration(initial=RegStat.HOME)
    with pytest.raises(LocalProtocolError, match=r"SEARCH_SUCCEEDED.*HOME \(1\)"):
        machine.process(RegInput.SEARCH_SUCCEEDED)
    assert machine.state is RegStat.UNKNOWN
    assert machine.process(RegInput.SEARCH_STARTED) is RegStat.SEARCHING


def test_reset_returns_to_not_registered() -> None:
    """reset() puts the machine back at stat 0."""
    machine = Registration(initial=RegStat.ROAMING)
    machine.reset()
    assert machine.state is RegStat.NOT_REGISTERED


@given(
    roaming=st.booleans(),
    stat=st.sampled_from(RegStat),
    event=st.sampled_from(RegInput),
)
def test_every_pair_is_in_table_or_raises(roaming: bool, stat: RegStat, event: RegInput) -> None:
    """Every (stat, input) pair either follows the table or raises and moves to UNKNOWN."""
    machine = Registration(roaming=roaming, initial=stat)
    table = ROAMING_TABLE if roaming else HOME_TABLE
    if (stat, event) in table:
        assert machine.process(event) is table[stat, event]
        assert machine.state is table[stat, event]
    else:
        with pytest.raises(LocalProtocolError) as info:
            machine.process(event)
        assert event.name in str(info.value)
        assert stat.name in str(info.value)
        assert machine.state is ERROR_STATE


@given(events=st.lists(st.sampled_from(RegInput), max_size=30), roaming=st.booleans())
def test_any_input_sequence_keeps_a_defined_state(events: list[RegInput], roaming: bool) -> None:
    """Whatever is fed, the machine is always in a RegStat and only errors on missing rows."""
    machine = Registration(roaming=roaming)
    for event in events:
        before = machine.state
        try:
            after = machine.process(event)
        except LocalProtocolError:
            assert (before, event) not in machine.table
            assert machine.state is ERROR_STATE
        else:
            assert after is machine.table[before, event]
        assert isinstance(machine.state, RegStat)


def test_only_search_results_searches_and_detaches_out_of_place_are_missing() -> None:
    """Missing rows: search results outside SEARCHING, searches while registered (rules 2, 3),
    and network detaches while not registered (rule 5)."""
    missing = {(stat, event) for stat in RegStat for event in RegInput} - HOME_TABLE.keys()
    expected = (
        {
            (stat, event)
            for stat in RegStat
            if stat is not RegStat.SEARCHING
            for event in (RegInput.SEARCH_SUCCEEDED, RegInput.SEARCH_DENIED)
        }
        | {(stat, RegInput.SEARCH_STARTED) for stat in REGISTERED_STATS}
        | {
            (stat, event)
            for stat in RegStat
            if stat not in REGISTERED_STATS
            for event in (RegInput.DETACHED, RegInput.DETACHED_DENIED)
        }
    )
    assert missing == expected


@pytest.mark.parametrize("stat", sorted(REGISTERED_STATS))
def test_network_detach_from_every_registered_stat(stat: RegStat) -> None:
    """DETACHED goes back to searching (2); DETACHED_DENIED to denied (3)."""
    assert Registration(initial=stat).process(RegInput.DETACHED) is RegStat.SEARCHING
    assert Registration(initial=stat).process(RegInput.DETACHED_DENIED) is RegStat.DENIED


def test_detach_while_searching_is_an_error() -> None:
    """The network detaches only a registered UE: DETACHED in stat 2 raises and names both."""
    machine = Registration(initial=RegStat.SEARCHING)
    with pytest.raises(LocalProtocolError, match=r"DETACHED.*SEARCHING \(2\)"):
        machine.process(RegInput.DETACHED)
    assert machine.state is ERROR_STATE


def test_use_roaming_switches_the_table_not_the_stat() -> None:
    """use_roaming(True) keeps the stat; the next successful search lands on ROAMING."""
    machine = Registration(initial=RegStat.HOME)
    machine.use_roaming(True)
    assert machine.state is RegStat.HOME
    assert machine.table is ROAMING_TABLE
    machine.process(RegInput.DETACHED)
    assert machine.process(RegInput.SEARCH_SUCCEEDED) is RegStat.ROAMING
    machine.use_roaming(False)
    assert machine.table is HOME_TABLE
    assert not machine.roaming


def test_reject_rules_follow_ts_24_301() -> None:
    """The cause table: #3/#7 invalidate the USIM, #11/#13 wait T3402, #15 keeps searching,
    #22 waits T3346; every row cites TS 24.301 5.5.1.2.5; T3402 is 12 min."""
    rows = {int(cause): (int(rule.stat), rule.retry.value) for cause, rule in REJECT_RULES.items()}
    assert rows == {
        3: (3, "sim-invalid"),
        7: (3, "sim-invalid"),
        11: (3, "t3402"),
        13: (3, "t3402"),
        15: (2, "search"),
        22: (3, "t3346"),
    }
    assert {rule.clause for rule in REJECT_RULES.values()} == {"24.301 5.5.1.2.5"}
    assert T3402_S == 12 * 60
    assert [int(cause) for cause in EmmCause] == [3, 7, 11, 13, 15, 22]
    assert [int(cause) for cause in EsmCause] == [26, 27, 29, 33, 38]
