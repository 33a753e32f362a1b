"""The simulated Modbus slave on a 9600-baud RS-485 line in virtual time; pymodbus is the oracle."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    ReadCoilsResponse,
    ReadDiscreteInputsRequest,
    ReadDiscreteInputsResponse,
    WriteMultipleCoilsRequest,
    WriteMultipleCoilsResponse,
    WriteSingleCoilRequest,
    WriteSingleCoilResponse,
)
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    ReadInputRegistersResponse,
    WriteMultipleRegistersRequest,
    WriteMultipleRegistersResponse,
    WriteSingleRegisterRequest,
    WriteSingleRegisterResponse,
)

from vdtu.clock import VirtualClock
from vdtu.errors import ConfigError
from vdtu.io.modbus_config import DEMO_SLAVE, Dynamic, DynamicKind, ModbusSlaveConfig, Table
from vdtu.io.modbus_slave import ModbusSlave
from vdtu.modbus import append_crc, build_request
from vdtu.uart.line import SerialLine
from vdtu.uart.memory import MemoryEndpoint

BYTE_S = 10 / 9600
"""One 8N1 character at 9600 baud."""
SILENCE_S = 3.5 * BYTE_S
"""t3.5 at 9600 baud."""


class Bus:
    """A 9600-baud RS-485 line with a master (MemoryEndpoint) and slaves in virtual time."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.line = SerialLine(self.clock.env, name="rs485", baud=9600, half_duplex=True)
        self.master = MemoryEndpoint(self.clock.env, self.line, name="master")

    def add(self, config: ModbusSlaveConfig, seed: int = 7) -> ModbusSlave:
        """Attach a slave with its own seeded rng."""
        return ModbusSlave(self.clock.env, random.Random(seed), self.line, config)

    def transact(self, frame: bytes, *, wait_s: float = 0.5) -> bytes:
        """Send ``frame`` as the master, run ``wait_s``, return what came back."""
        before = len(self.master.data)
        self.master.write(frame)
        self.clock.run_for(wait_s)
        return self.master.data[before:]


def pymodbus_frame(pdu: ModbusPDU) -> bytes:
    """An RTU request frame built by pymodbus."""
    return bytes(FramerRTU(DecodePDU(is_server=False)).buildFrame(pdu))


def pymodbus_parse(frame: bytes) -> ModbusPDU:
    """Decode a response with pymodbus as a master would; it must take the whole frame."""
    used, pdu = FramerRTU(DecodePDU(is_server=False)).handleFrame(frame, 0, 0)
    assert used == len(frame)
    assert pdu is not None
    return pdu


@pytest.fixture
def bus() -> Bus:
    return Bus()


@pytest.fixture
def demo(bus: Bus) -> ModbusSlave:
    return bus.add(DEMO_SLAVE)


# --- timing and the SEND_MBR_485 example (docs/spec/xgc.md#5.14) -----------------------


def test_seed_read_is_answered_with_the_seed_reply(bus: Bus, demo: ModbusSlave) -> None:
    """The xgc.md#5.14 read of holding register 0 gets 01 03 02 01 15 78 1B."""
    assert bus.transact(bytes.fromhex("01 03 00 00 00 01 84 0A")) == bytes.fromhex(
        "01 03 02 01 15 78 1B"
    )
    assert demo.stats.replies == 1


def test_reply_arrives_after_wire_time_silence_and_delay(bus: Bus, demo: ModbusSlave) -> None:
    """8 bytes out (8.33 ms), t3.5 (3.65 ms), 5 ms delay, 7 back (7.29 ms): done at 24.27 ms."""
    bus.master.write(bytes.fromhex("01 03 00 00 00 01 84 0A"))
    bus.clock.run_for(0.1)
    times = [at for at, _chunk in bus.master.received]
    assert times[0] == pytest.approx(8 * BYTE_S + SILENCE_S + 0.005 + BYTE_S)
    assert times[-1] == pytest.approx(0.024271, abs=1e-6)
    assert times[-1] == pytest.approx(8 * BYTE_S + SILENCE_S + 0.005 + 7 * BYTE_S)


def test_response_delay_is_configurable(bus: Bus) -> None:
    """A slave configured with a 50 ms delay answers 45 ms later than the default one."""
    bus.add(ModbusSlaveConfig(address=1, holding_registers={0: [5]}, response_delay_s=0.05))
    bus.master.write(build_request(1, 3, 0, 1))
    bus.clock.run_for(0.2)
    assert bus.master.received[-1][0] == pytest.approx(8 * BYTE_S + SILENCE_S + 0.05 + 7 * BYTE_S)


def test_a_request_split_by_a_short_gap_is_one_frame(bus: Bus, demo: ModbusSlave) -> None:
    """Bytes separated by less than t3.5 belong to the same frame."""
    frame = build_request(1, 3, 0, 1)
    bus.master.write(frame[:4])
    bus.clock.run_for(4 * BYTE_S + 0.001)
    bus.master.write(frame[4:])
    bus.clock.run_for(0.1)
    assert bus.master.data == bytes.fromhex("0103020115781B")
    assert demo.stats.frames == 1


def test_a_gap_longer_than_t35_splits_the_frame(bus: Bus, demo: ModbusSlave) -> None:
    """A pause longer than t3.5 ends the frame: both halves fail the CRC and nothing is answered."""
    frame = build_request(1, 3, 0, 1)
    bus.master.write(frame[:4])
    bus.clock.run_for(4 * BYTE_S + 0.005)
    bus.master.write(frame[4:])
    bus.clock.run_for(0.1)
    assert bus.master.data == b""
    assert (demo.stats.frames, demo.stats.bad_crc) == (2, 2)


def test_timing_above_19200_baud_uses_the_fixed_gap() -> None:
    """At 115200 baud t3.5 is the fixed 1.75 ms, so the reply is done 1.75 + 5 ms after 15 bytes."""
    clock = VirtualClock()
    line = SerialLine(clock.env, name="rs485", baud=115200, half_duplex=True)
    master = MemoryEndpoint(clock.env, line, name="master")
    ModbusSlave(clock.env, random.Random(1), line, DEMO_SLAVE)
    master.write(build_request(1, 3, 0, 1))
    clock.run_for(0.1)
    assert master.data == bytes.fromhex("0103020115781B")
    assert master.received[-1][0] == pytest.approx(15 * 10 / 115200 + 0.00175 + 0.005)


def test_an_endless_stream_is_cut_and_ignored(bus: Bus, demo: ModbusSlave) -> None:
    """300 bytes without a pause overflow the 256-byte buffer: one bad frame, then normal work."""
    assert bus.transact(bytes(300)) == b""
    assert (demo.stats.frames, demo.stats.bad_crc) == (1, 1)
    assert bus.transact(build_request(1, 3, 0, 1)) == bytes.fromhex("0103020115781B")


# --- every function code, checked with pymodbus ----------------------------------------


def test_read_coils(bus: Bus, demo: ModbusSlave) -> None:
    """Function 1 returns the coils, packed LSB first."""
    demo.poke(Table.COIL, 1, 1)
    demo.poke(Table.COIL, 9, 1)
    reply = pymodbus_parse(
        bus.transact(pymodbus_frame(ReadCoilsRequest(address=0, count=16, dev_id=1)))
    )
    assert isinstance(reply, ReadCoilsResponse)
    assert [index for index, bit in enumerate(reply.bits) if bit] == [1, 9]


def test_read_discrete_inputs(bus: Bus, demo: ModbusSlave) -> None:
    """Function 2 returns the discrete inputs of the config."""
    frame = pymodbus_frame(ReadDiscreteInputsRequest(address=0, count=16, dev_id=1))
    reply = pymodbus_parse(bus.transact(frame))
    assert isinstance(reply, ReadDiscreteInputsResponse)
    assert [int(bit) for bit in reply.bits] == list(DEMO_SLAVE.discrete_inputs[0])


def test_read_holding_registers(bus: Bus, demo: ModbusSlave) -> None:
    """Function 3 returns the ten demo holding registers."""
    frame = pymodbus_frame(ReadHoldingRegistersRequest(address=0, count=10, dev_id=1))
    reply = pymodbus_parse(bus.transact(frame))
    assert isinstance(reply, ReadHoldingRegistersResponse)
    assert reply.registers == [0x0115, 1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_read_input_registers(bus: Bus, demo: ModbusSlave) -> None:
    """Function 4 returns the input registers (the counter has counted the elapsed seconds)."""
    bus.clock.run_for(2.5)
    frame = pymodbus_frame(ReadInputRegistersRequest(address=0, count=3, dev_id=1))
    reply = pymodbus_parse(bus.transact(frame, wait_s=0.1))
    assert isinstance(reply, ReadInputRegistersResponse)
    assert reply.registers[0] == 2
    assert reply.registers[2] == 500


def test_write_single_coil(bus: Bus, demo: ModbusSlave) -> None:
    """Function 5 switches the coil and echoes the request."""
    frame = pymodbus_frame(WriteSingleCoilRequest(address=4, bits=[True], dev_id=1))
    answer = bus.transact(frame)
    assert answer == frame
    reply = pymodbus_parse(answer)
    assert isinstance(reply, WriteSingleCoilResponse)
    assert demo.peek(Table.COIL, 4) == 1


def test_write_single_register(bus: Bus, demo: ModbusSlave) -> None:
    """Function 6 writes the holding register and echoes the request."""
    frame = pymodbus_frame(WriteSingleRegisterRequest(address=2, registers=[0xBEEF], dev_id=1))
    reply = pymodbus_parse(bus.transact(frame))
    assert isinstance(reply, WriteSingleRegisterResponse)
    assert (reply.address, reply.registers) == (2, [0xBEEF])
    assert demo.peek(Table.HOLDING, 2) == 0xBEEF


def test_write_multiple_coils(bus: Bus, demo: ModbusSlave) -> None:
    """Function 15 switches consecutive coils and acknowledges start and quantity."""
    bits = [True, False, True, True, False, False, False, False, True, True]
    frame = pymodbus_frame(WriteMultipleCoilsRequest(address=3, bits=bits, dev_id=1))
    reply = pymodbus_parse(bus.transact(frame))
    assert isinstance(reply, WriteMultipleCoilsResponse)
    assert (reply.address, reply.count) == (3, 10)
    assert [demo.peek(Table.COIL, 3 + i) for i in range(10)] == [int(bit) for bit in bits]


def test_write_multiple_registers(bus: Bus, demo: ModbusSlave) -> None:
    """Function 16 writes consecutive holding registers and acknowledges start and quantity."""
    frame = pymodbus_frame(
        WriteMultipleRegistersRequest(address=5, registers=[10, 20, 30], dev_id=1)
    )
    reply = pymodbus_parse(bus.transact(frame))
    assert isinstance(reply, WriteMultipleRegistersResponse)
    assert (reply.address, reply.count) == (5, 3)
    assert [demo.peek(Table.HOLDING, 5 + i) for i in range(3)] == [10, 20, 30]


# --- exception responses ----------------------------------------------------------------


def exception_of(answer: bytes) -> tuple[int, int]:
    """(function code with the 0x80 bit, exception code) of an exception response, via pymodbus."""
    reply = pymodbus_parse(answer)
    assert isinstance(reply, ExceptionResponse)
    return reply.function_code, reply.exception_code


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (bytes.fromhex("0107"), (0x87, 1)),  # read exception status: not supported
        (bytes.fromhex("01170000000100000001020000"), (0x97, 1)),  # read/write multiple
        (bytes.fromhex("0103000a0001"), (0x83, 2)),  # holding 10 does not exist
        (bytes.fromhex("010300090002"), (0x83, 2)),  # 9..10 runs past the table
        (bytes.fromhex("010400030001"), (0x84, 2)),  # input 3 does not exist
        (bytes.fromhex("01050010ff00"), (0x85, 2)),  # coil 16 does not exist
        (bytes.fromhex("0106000a0001"), (0x86, 2)),  # holding 10 is not writable: not there
        (bytes.fromhex("010f000f00020103"), (0x8F, 2)),  # coils 15..16
        (bytes.fromhex("0110000900020400010002"), (0x90, 2)),  # holding 9..10
        (bytes.fromhex("010300000000"), (0x83, 3)),  # quantity 0
        (bytes.fromhex("01030000007e"), (0x83, 3)),  # quantity 126
        (bytes.fromhex("010500001234"), (0x85, 3)),  # coil value neither FF00 nor 0000
        (bytes.fromhex("010f0000000a0103"), (0x8F, 3)),  # byte count 1 for 10 coils
    ],
)
def test_exception_responses(
    bus: Bus, demo: ModbusSlave, body: bytes, expected: tuple[int, int]
) -> None:
    """Unsupported function -> 1, address outside the table -> 2, bad quantity or value -> 3."""
    assert exception_of(bus.transact(append_crc(body))) == expected
    assert demo.stats.exceptions == 1


def test_refused_write_changes_nothing(bus: Bus, demo: ModbusSlave) -> None:
    """A multiple write that runs past the table is refused whole: no register changes."""
    bus.transact(append_crc(bytes.fromhex("0110000900020400010002")))
    assert demo.peek(Table.HOLDING, 9) == 9


# --- silence --------------------------------------------------------------------------


def test_absent_address_gets_silence(bus: Bus, demo: ModbusSlave) -> None:
    """A request for slave 5 on a bus with only slave 1 gets no answer at all."""
    assert bus.transact(build_request(5, 3, 0, 1)) == b""
    assert demo.stats.not_mine == 1


def test_bad_crc_gets_silence(bus: Bus, demo: ModbusSlave) -> None:
    """A request with a damaged CRC is ignored and counted."""
    assert bus.transact(bytes.fromhex("01 03 00 00 00 01 84 0B")) == b""
    assert demo.stats.bad_crc == 1


def test_malformed_frame_gets_silence(bus: Bus, demo: ModbusSlave) -> None:
    """A read with a trailing extra byte (good CRC, wrong length) is ignored as a bad frame."""
    assert bus.transact(append_crc(bytes.fromhex("01030000000100"))) == b""
    assert demo.stats.bad_frame == 1


def test_offline_slave_is_silent_and_comes_back(bus: Bus, demo: ModbusSlave) -> None:
    """set_online(False) silences the slave; set_online(True) brings its answers back."""
    demo.set_online(False)
    assert bus.transact(build_request(1, 3, 0, 1)) == b""
    assert demo.stats.frames == 0
    demo.set_online(True)
    assert bus.transact(build_request(1, 3, 0, 1)) == bytes.fromhex("0103020115781B")


def test_going_offline_drops_a_pending_answer(bus: Bus, demo: ModbusSlave) -> None:
    """A slave silenced between the request and its answer never sends the answer."""
    bus.master.write(build_request(1, 6, 0, 7))
    bus.clock.run_for(8 * BYTE_S + SILENCE_S + 0.001)
    demo.set_online(False)
    bus.clock.run_for(0.1)
    assert bus.master.data == b""
    assert demo.peek(Table.HOLDING, 0) == 7


# --- broadcast and several slaves -------------------------------------------------------


def test_broadcast_write_acts_on_every_slave_and_nobody_answers(bus: Bus) -> None:
    """A write to address 0 changes every slave and gets no answer."""
    one = bus.add(DEMO_SLAVE)
    two = bus.add(ModbusSlaveConfig(address=2, holding_registers={0: [0, 0]}))
    assert bus.transact(build_request(0, 6, 1, 42)) == b""
    assert (one.peek(Table.HOLDING, 1), two.peek(Table.HOLDING, 1)) == (42, 42)
    assert (one.stats.broadcasts, two.stats.broadcasts) == (1, 1)
    assert bus.transact(build_request(0, 15, 0, 1)) == b""
    assert one.peek(Table.COIL, 0) == 1


def test_broadcast_read_is_ignored(bus: Bus, demo: ModbusSlave) -> None:
    """A read sent to address 0 is not a valid request: silence."""
    assert bus.transact(append_crc(bytes.fromhex("000300000001"))) == b""
    assert demo.stats.bad_frame == 1


def test_broadcast_refusal_is_not_answered(bus: Bus, demo: ModbusSlave) -> None:
    """A broadcast write to a missing register is refused silently."""
    assert bus.transact(build_request(0, 6, 99, 1)) == b""
    assert (demo.stats.exceptions, demo.stats.replies) == (1, 0)


def test_two_slaves_share_the_bus(bus: Bus) -> None:
    """Each of two slaves answers its own address and ignores the other's traffic."""
    one = bus.add(DEMO_SLAVE)
    two = bus.add(ModbusSlaveConfig(address=2, holding_registers={0: [0xAAAA]}), seed=8)
    reply = pymodbus_parse(bus.transact(build_request(2, 3, 0, 1)))
    assert isinstance(reply, ReadHoldingRegistersResponse)
    assert (reply.dev_id, reply.registers) == (2, [0xAAAA])
    assert bus.transact(build_request(1, 3, 0, 1)) == bytes.fromhex("0103020115781B")
    assert (one.stats.replies, two.stats.replies) == (1, 1)
    assert one.stats.not_mine == 2  # slave 2's request and slave 2's reply
    assert two.stats.not_mine == 2
    assert bus.line.collisions == 0


def test_slaves_of_one_config_keep_their_own_values() -> None:
    """Two units' demo slaves share the config's tables; a write or a power cycle on one is not
    seen by the other, nor by the config."""
    first, second = Bus(), Bus()
    mine, other = first.add(DEMO_SLAVE), second.add(DEMO_SLAVE)
    first.transact(build_request(1, 6, 0, 7))
    mine.poke(Table.COIL, 3, 1)
    assert (mine.peek(Table.HOLDING, 0), mine.peek(Table.COIL, 3)) == (7, 1)
    assert (other.peek(Table.HOLDING, 0), other.peek(Table.COIL, 3)) == (0x0115, 0)
    assert DEMO_SLAVE.values[Table.HOLDING][0] == 0x0115
    other.reset()
    assert mine.peek(Table.HOLDING, 0) == 7


# --- dynamics, reset, control side --------------------------------------------------------


def test_counter_counts_and_wraps(bus: Bus) -> None:
    """A counter adds its step every period and wraps at 65536."""
    config = ModbusSlaveConfig(
        address=3,
        input_registers={7: [65534]},
        dynamics=(
            Dynamic(table=Table.INPUT, register=7, kind=DynamicKind.COUNTER, period_s=2.0, step=1),
        ),
    )
    slave = bus.add(config)
    bus.clock.run_for(0.5)
    seen = []
    for _ in range(3):
        bus.clock.run_for(2.0)
        seen.append(slave.peek(Table.INPUT, 7))
    assert seen == [65535, 0, 1]


def test_noise_stays_in_its_band_and_replays_from_the_seed(bus: Bus) -> None:
    """A noisy register stays within base ± amplitude, and the same seed gives the same values."""
    config = ModbusSlaveConfig(
        address=4,
        holding_registers={0: [250]},
        dynamics=(
            Dynamic(
                table=Table.HOLDING, register=0, kind=DynamicKind.NOISE, period_s=1.0, amplitude=3
            ),
        ),
    )
    first, second = bus.add(config, seed=11), bus.add(config, seed=11)
    values = []
    for _ in range(50):
        bus.clock.run_for(1.0)
        values.append(first.peek(Table.HOLDING, 0))
        assert second.peek(Table.HOLDING, 0) == values[-1]
    assert all(247 <= value <= 253 for value in values)
    assert len(set(values)) > 1


def test_writing_a_noisy_register_moves_its_base(bus: Bus) -> None:
    """After a Modbus write to a noisy register, the noise is centred on the written value."""
    config = ModbusSlaveConfig(
        address=4,
        holding_registers={0: [250]},
        dynamics=(
            Dynamic(
                table=Table.HOLDING, register=0, kind=DynamicKind.NOISE, period_s=1.0, amplitude=2
            ),
        ),
    )
    slave = bus.add(config)
    bus.transact(build_request(4, 6, 0, 1000), wait_s=0.1)
    for _ in range(20):
        bus.clock.run_for(1.0)
        assert 998 <= slave.peek(Table.HOLDING, 0) <= 1002


def test_dynamics_schedule_nothing_and_read_the_same_whenever_read(bus: Bus) -> None:
    """Dynamics are computed on read: no event is queued for them, and a value read at a time
    is the same whether or not it was read before."""
    config = ModbusSlaveConfig(
        address=4,
        input_registers={0: [100, 250]},
        dynamics=(
            Dynamic(table=Table.INPUT, register=0, kind=DynamicKind.COUNTER, period_s=1.0),
            Dynamic(
                table=Table.INPUT, register=1, kind=DynamicKind.NOISE, period_s=5.0, amplitude=3
            ),
        ),
    )
    watched, quiet = bus.add(config, seed=3), bus.add(config, seed=3)
    assert not bus.clock.env._queue
    seen = []
    for _ in range(40):
        bus.clock.run_for(2.5)
        seen.append((watched.peek(Table.INPUT, 0), watched.peek(Table.INPUT, 1)))
    assert (quiet.peek(Table.INPUT, 0), quiet.peek(Table.INPUT, 1)) == seen[-1]
    assert seen[-1][0] == 100 + 99
    assert watched.peek(Table.INPUT, 1) == seen[-1][1]
    assert len({noisy for _, noisy in seen}) > 1
    bus.clock.run_for(86400.0)
    assert watched.peek(Table.INPUT, 0) == (100 + 86499) % 65536


def test_noise_after_a_power_cycle_is_drawn_afresh(bus: Bus) -> None:
    """A reset restarts the periods, and the noise after it is not a replay of the first."""
    config = ModbusSlaveConfig(
        address=4,
        input_registers={0: [250]},
        dynamics=(
            Dynamic(
                table=Table.INPUT, register=0, kind=DynamicKind.NOISE, period_s=1.0, amplitude=3
            ),
        ),
    )
    slave = bus.add(config)
    runs = []
    for _ in range(2):
        values = []
        for _ in range(30):
            bus.clock.run_for(1.0)
            values.append(slave.peek(Table.INPUT, 0))
        runs.append(values)
        slave.reset()
    assert runs[0] != runs[1]


def test_reset_restores_the_config_and_restarts_dynamics(bus: Bus, demo: ModbusSlave) -> None:
    """reset() puts every table back to its configured values and restarts the counter from 0."""
    bus.transact(build_request(1, 6, 0, 7))
    demo.poke(Table.COIL, 0, 1)
    bus.clock.run_for(10.0)
    assert demo.peek(Table.INPUT, 0) == 10
    demo.reset()
    assert demo.peek(Table.HOLDING, 0) == 0x0115
    assert demo.peek(Table.COIL, 0) == 0
    assert demo.peek(Table.INPUT, 0) == 0
    bus.clock.run_for(2.5)
    assert demo.peek(Table.INPUT, 0) == 2


def test_reset_drops_a_pending_answer_and_keeps_the_offline_flag(
    bus: Bus, demo: ModbusSlave
) -> None:
    """An answer due after a reset is never sent; an offline slave stays offline after reset."""
    bus.master.write(build_request(1, 3, 0, 1))
    bus.clock.run_for(8 * BYTE_S + SILENCE_S + 0.001)
    demo.reset()
    bus.clock.run_for(0.1)
    assert bus.master.data == b""
    demo.set_online(False)
    demo.reset()
    assert not demo.online


def test_peek_and_poke_validate(demo: ModbusSlave) -> None:
    """Unknown addresses and out-of-range values raise ValueError naming them and the range."""
    with pytest.raises(
        ValueError, match=re.escape("holding address must be one of 0..9 on slave 1, not 10")
    ):
        demo.peek(Table.HOLDING, 10)
    with pytest.raises(ValueError, match=re.escape("coil value must be 0..1, not 2")):
        demo.poke(Table.COIL, 0, 2)
    with pytest.raises(ValueError, match=re.escape("input value must be 0..65535, not 65536")):
        demo.poke(Table.INPUT, 0, 65536)
    demo.poke(Table.DISCRETE_INPUT, 15, 1)
    assert demo.peek(Table.DISCRETE_INPUT, 15) == 1


def test_snapshot_copies_tables_and_counters(bus: Bus, demo: ModbusSlave) -> None:
    """A snapshot holds the tables and counters at the time it was taken."""
    bus.transact(build_request(1, 3, 0, 1))
    snap = demo.snapshot()
    demo.poke(Table.HOLDING, 0, 1)
    assert snap.tables[Table.HOLDING][0] == 0x0115
    assert (snap.name, snap.address, snap.online) == ("modbus-1", 1, True)
    assert (snap.stats.frames, snap.stats.replies) == (1, 1)


@settings(max_examples=40, deadline=None)
@given(start=st.integers(0, 20), count=st.integers(1, 20))
def test_holding_reads_match_the_table_or_are_refused(start: int, count: int) -> None:
    """Any read of holding registers returns the table slice, or exception 2 past its end."""
    bus = Bus()
    bus.add(DEMO_SLAVE)
    answer = bus.transact(build_request(1, 3, start, count), wait_s=0.2)
    if start + count <= 10:
        reply = pymodbus_parse(answer)
        assert isinstance(reply, ReadHoldingRegistersResponse)
        assert reply.registers == list(DEMO_SLAVE.holding_registers[0])[start : start + count]
    else:
        assert exception_of(answer) == (0x83, 2)


# --- configuration ----------------------------------------------------------------------


def test_from_dict_builds_a_config() -> None:
    """A JSON-shaped dict with string start addresses (decimal or hex) and dynamics is accepted."""
    config = ModbusSlaveConfig.from_dict(
        {
            "address": 2,
            "holding_registers": {"0": [277, 1], "0x10": [5]},
            "coils": {"0": [True, False, 1]},
            "input_registers": {"0": [0]},
            "response_delay_s": 0.01,
            "dynamics": [{"table": "input", "register": 0, "kind": "counter", "period_s": 1}],
        }
    )
    assert config.address == 2
    assert dict(config.holding_registers) == {0: (277, 1), 16: (5,)}
    assert dict(config.coils) == {0: (1, 0, 1)}
    assert config.dynamics == (
        Dynamic(table=Table.INPUT, register=0, kind=DynamicKind.COUNTER, period_s=1.0),
    )


def with_dynamic(**fields: object) -> dict[str, object]:
    """Slave 1 with one dynamic (an input counter on register 0) changed by ``fields``."""
    dynamic = {"table": "input", "register": 0, "kind": "counter", "period_s": 1} | fields
    return {"address": 1, "input_registers": {"0": [0]}, "dynamics": [dynamic]}


def with_table(name: str, blocks: object) -> dict[str, object]:
    """A config for slave 1 with one table set to ``blocks``."""
    return {"address": 1, name: blocks}


BAD_CONFIGS: list[tuple[dict[str, object], str]] = [
    ({"address": 0}, "address must be an integer 1..247, not 0"),
    ({"address": "1"}, "address must be an integer 1..247, not '1'"),
    ({}, "address is required"),
    ({"address": 1, "colis": {}}, "unknown Modbus slave config keys ['colis']"),
    (with_table("coils", [1]), "coils must be an object of start address -> list, not [1]"),
    (with_table("coils", {"x": [1]}), "coils start address must be an integer such as"),
    (with_table("coils", {"0": [2]}), "coils[0] value must be an integer 0..1, not 2"),
    (with_table("coils", {"0": 1}), "coils['0'] must be a list of values, not 1"),
    (
        with_table("holding_registers", {"0": [70000]}),
        "holding_registers[0] value must be an integer 0..65535, not 70000",
    ),
    (with_table("holding_registers", {"0": []}), "holding_registers[0] must hold at least one"),
    (
        with_table("holding_registers", {"65535": [1, 2]}),
        "holding_registers[65535] must end at address 65535 or below, not 65536",
    ),
    (
        with_table("input_registers", {"0": [1, 2], "1": [3]}),
        "input_registers[1] overlaps input_registers[0] (addresses 0..1)",
    ),
    ({"address": 1, "response_delay_s": -1}, "response_delay_s must be 0..10 (seconds), not -1.0"),
    ({"address": 1, "response_delay_s": "x"}, "response_delay_s must be a number, not 'x'"),
    ({"address": 1, "dynamics": {}}, "dynamics must be a list of objects, not {}"),
    (with_dynamic(table="coil"), "dynamics[0]: dynamic table must be 'holding' or 'input'"),
    (with_dynamic(table="hold"), "dynamics[0].table must be 'holding' or 'input', not 'hold'"),
    (with_dynamic(kind="ramp"), "dynamics[0].kind must be 'counter' or 'noise', not 'ramp'"),
    (with_dynamic(period_s=0), "dynamic period_s must be a finite number > 0, not 0.0"),
    (with_dynamic(step=0), "dynamics[0]: dynamic step must be an integer 1..65535, not 0"),
    (with_dynamic(size=1), "dynamics[0]: unknown keys ['size']"),
    (
        with_dynamic(register=5),
        "dynamic register 5 must be one of the configured input_registers (0..0)",
    ),
    (
        {"address": 1, "dynamics": [{"table": "input", "register": 0, "kind": "noise"}]},
        "dynamics[0]: missing keys ['period_s']",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_CONFIGS)
def test_from_dict_rejects_bad_fields(data: dict[str, object], message: str) -> None:
    """Every bad field raises ConfigError naming the field, the value and what is allowed."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        ModbusSlaveConfig.from_dict(data)


def test_two_dynamics_on_one_register_are_rejected() -> None:
    """A register can have only one dynamic."""
    counter = Dynamic(table=Table.INPUT, register=0, kind=DynamicKind.COUNTER, period_s=1.0)
    with pytest.raises(ConfigError, match="has two dynamics"):
        ModbusSlaveConfig(address=1, input_registers={0: [0]}, dynamics=(counter, counter))


def test_demo_slave_matches_its_description() -> None:
    """The demo slave: address 1, 0x0115 at holding 0, 10 holding, 3 input, 16 coils and inputs."""
    assert DEMO_SLAVE.address == 1
    assert DEMO_SLAVE.holding_registers[0][0] == 0x0115
    assert [len(DEMO_SLAVE.blocks(table)[0]) for table in Table] == [16, 16, 10, 3]
    assert DEMO_SLAVE.input_registers[0][1] == 250  # 25.0 °C
