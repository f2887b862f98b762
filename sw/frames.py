"""What a frame costs at run time: end-to-end latency and energy of one inference at a width
configuration and an operating point, and what switching between two of them costs.

A frame is the protocol of ``sw.measure.frame``: clear the counters, load the image, start the
whole network, wait for DONE, read the logits and every counter. Its costs:

* compute: the device's BUSY_CYCLES at the clock f, stretched by the accelerator's share of time
  when another tenant uses it (``share``, 1 when it has it alone);
* transfer: every bus transaction of the frame at the bus clock, which is the accelerator's
  clock (its AXI4-Lite slave is in the same clock domain, so it scales with f), at the cycles
  per transaction measured on the RTL with cocotbext-axi's master (``BUS_CYCLES``; a test
  measures them again). The host does not poll during compute: the schedule's cycle count is
  exact, so it reads STATUS once, after the predicted time;
* energy: ``sw.energy.energy`` of the frame's counters, every bus byte charged as off-chip.

A width change is the register writes it performs (``switch_writes``); an operating-point change
costs ``SETTLE_US`` of idle settling, charged its leakage. Both are paid by the frame after it.
"""
from __future__ import annotations

from dataclasses import dataclass

from hw.contract.regmap import COUNTERS

from .energy import OPPS, OperatingPoint, energy

# AXI4-Lite transactions back to back, cycles each, measured on the RTL (sim/tb_host.py records
# them in every RTL session; sim/test_runtime_rtl.py compares): a write is accepted, performed
# and answered in 4 cycles, a register read answered in 5.
BUS_CYCLES = {"write": 4, "read": 5}

# Voltage/frequency transition: the accelerator idles while the regulator and the clock settle.
# Assumption of the order of a mobile SoC's DVFS transition (Exynos 5422 cpufreq, ~140 us).
SETTLE_US = 140.0


@dataclass(frozen=True)
class Transactions:
    """Bus transactions of one frame."""

    writes: int
    reads: int

    @property
    def bytes(self) -> int:
        return 4 * (self.writes + self.reads)


def frame_transactions(program, classes: int) -> Transactions:
    """CTRL.CLEAR_COUNTERS, the image's words, FIRST_LAYER, NUM_LAYERS, CTRL.START; one STATUS
    read, the logits, every counter (two words each)."""
    cfg, d = program.cfg, program.descs[0]
    entries = -(-d["h"] * d["w"] // cfg.img_pack)  # hw.contract.program.image_bytes' layout
    image_words = entries * -(-cfg.img_channels * cfg.img_pack // 4)
    return Transactions(writes=1 + image_words + 3, reads=1 + classes + 2 * len(COUNTERS))


def switch_writes(program, uniform: bool) -> int:
    """Bus writes of a width change (``sw.measure.configure``)."""
    return 1 if uniform else 1 + program.num_layers


def transfer_us(t: Transactions, opp: OperatingPoint) -> float:
    return (t.writes * BUS_CYCLES["write"] + t.reads * BUS_CYCLES["read"]) / opp.mhz


@dataclass(frozen=True)
class FrameCost:
    """One (profile, operating point): the frame's costs with the accelerator to itself."""

    groups: tuple
    opp: str
    transfer_us: float
    compute_us: float
    energy_pj: float

    def latency_us(self, share: float = 1.0) -> float:
        return self.transfer_us + self.compute_us / share


def frame_cost(counters: dict, groups, opp: OperatingPoint, acfg, t: Transactions) -> FrameCost:
    """Costs of a frame from its device counters (BUSY_CYCLES and the datapath and buffer
    counters; the bus is charged from ``t``)."""
    busy = counters["BUSY_CYCLES"]
    e = energy(counters, acfg, opp, cycles=busy, bus_bytes=t.bytes)
    return FrameCost(tuple(groups), opp.name, transfer_us(t, opp), busy / opp.mhz, e["total"])


def switch_cost(a: FrameCost | None, b: FrameCost, program, acfg) -> tuple[float, float]:
    """(microseconds, picojoules) of going from configuration ``a`` to ``b`` before b's frame:
    the width registers at b's clock, and SETTLE_US idle at the higher voltage when the
    operating point changes."""
    if a is None:
        return 0.0, 0.0
    us = pj = 0.0
    if a.groups != b.groups:
        opp = OPPS[b.opp]
        n = switch_writes(program, len(set(b.groups)) == 1)
        us += transfer_us(Transactions(n, 0), opp)
        pj += energy({}, acfg, opp, cycles=0, bus_bytes=4 * n)["total"]
    if a.opp != b.opp:
        hi = max(OPPS[a.opp], OPPS[b.opp], key=lambda o: o.volts)
        us += SETTLE_US
        pj += energy({}, acfg, hi, cycles=round(SETTLE_US * hi.mhz))["leakage"]
    return us, pj
