"""The FPGA parts the flow targets, nextpnr's placers and routers, and the DSP policy: which
PE rows keep LUT multipliers when a part has too few DSP blocks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Device:
    """One FPGA part: the nextpnr arguments and the capacity of each resource we report."""

    family: str  # "ecp5" or "ice40"
    part: str  # human-readable part name
    pnr_args: tuple  # device + package arguments for nextpnr
    capacity: dict = field(default_factory=dict)  # resource -> count (datasheet)
    # a pin with a dedicated path to the global clock network (ECP5 CABGA381: G2, PCLKT6_1, the
    # clock pin of ULX3S-class boards); unconstrained, nextpnr may pick a pad that cannot reach it
    clock_pin: str | None = None
    # ECP5: the reset enters on a second PCLK pin (CABGA381: H2, PCLKT6_0) and a DCCA puts it on
    # a global network, as a board's synchronised reset would be (see write_wrapper)
    reset_pin: str | None = None
    speed: int | None = None  # ECP5 speed grade (6 slowest .. 8 fastest); None for iCE40


# nextpnr placers offered (``--placer``): the electrostatic "static" placer (the flow's
# default: it spreads cells by density; under router2 it left the 8x8 on the ECP5-45F with
# ~140 overused wires where HeAP left thousands) and HeAP (analytic, nextpnr's own default);
# routers: router1 (the flow's default: it finished that 8x8, where router2's overuse grew
# again from ~140) and router2
PLACERS = ("static", "heap")
ROUTERS = ("router1", "router2")
DEFAULT_PLACER, DEFAULT_ROUTER = "static", "router1"
ECP5_SPEEDS = (6, 7, 8)


def with_speed(dev: Device, speed: int) -> Device:
    """``dev`` (ECP5) at another speed grade: the part name and nextpnr's ``--speed`` follow."""
    args = list(dev.pnr_args)
    args[args.index("--speed") + 1] = str(speed)
    part = re.sub(r"-\d(BG\d+C)$", rf"-{speed}\1", dev.part)
    return replace(dev, part=part, pnr_args=tuple(args), speed=speed)


# Capacities from the Lattice data sheets (ECP5: FPGA-DS-02012; iCE40 UltraPlus: FPGA-DS-02008);
# after place and route nextpnr's own utilisation report is used instead.
DEVICES = {
    "ecp5-25k": Device("ecp5", "LFE5U-25F-6BG381C", ("--25k", "--package", "CABGA381", "--speed", "6"),
                       dict(luts=24288, ffs=24288, dsp=28, bram=56),
                       clock_pin="G2", reset_pin="H2", speed=6),
    "ecp5-45k": Device("ecp5", "LFE5U-45F-6BG381C", ("--45k", "--package", "CABGA381", "--speed", "6"),
                       dict(luts=43848, ffs=43848, dsp=72, bram=108),
                       clock_pin="G2", reset_pin="H2", speed=6),
    "ecp5-85k": Device("ecp5", "LFE5U-85F-6BG381C", ("--85k", "--package", "CABGA381", "--speed", "6"),
                       dict(luts=83640, ffs=83640, dsp=156, bram=208),
                       clock_pin="G2", reset_pin="H2", speed=6),
    "ice40-up5k": Device("ice40", "iCE40UP5K-SG48", ("--up5k", "--package", "sg48"),
                         dict(luts=5280, ffs=5280, dsp=8, bram=30, spram=4)),
}

# Names of the hard resources per family (Yosys cell type == nextpnr bel type for these).
HARD = {
    "ecp5": dict(dsp="MULT18X18D", bram="DP16KD"),
    "ice40": dict(dsp="SB_MAC16", bram="SB_RAM40_4K", spram="SB_SPRAM256KA"),
}
# nextpnr utilisation keys -> our resource names
PNR_UTIL = {
    "ecp5": dict(luts="TRELLIS_COMB", ffs="TRELLIS_FF", dsp="MULT18X18D", bram="DP16KD"),
    "ice40": dict(luts="ICESTORM_LC", dsp="ICESTORM_DSP", bram="ICESTORM_RAM", spram="ICESTORM_SPRAM"),
}

# ECP5 multiplier policies: "datapath" (PE and requantizer multipliers on MULT18X18D, the last PE
# rows in LUTs if the DSP blocks are too few), "requant" (only the requantizer's: every PE
# multiplier in LUTs, so the array is not pulled onto the device's DSP rows), "all" (Yosys' own)
DSP_POLICIES = ("datapath", "requant", "all")
# what is synthesised: the accelerator, or the plain int8 MAC grid the 85 MHz refers to
# (hw/flow/macgrid.py: multiply and accumulate in one cycle, Yosys' own DSP mapping), as a baseline
# on the same flow, or that grid with its products registered (the simplest pipelining)
DESIGNS = ("chanscale", "macgrid", "macgrid_pipelined")


def lut_pe_rows(n: int, dsp_capacity: int) -> int:
    """PE rows whose multipliers the "datapath" policy builds from LUTs so the DSP blocks
    suffice: the datapath needs N*N (PEs) + 2N (requantizer lanes, 32 x 17 bits each), and
    whole rows from the bottom of the array move to LUTs (an int8 product is a small LUT
    multiplier; a requantizer lane is not). 0 when everything fits."""
    excess = n * n + 2 * n - dsp_capacity
    return 0 if excess <= 0 else min(n, -(-excess // n))


def pe_rows_in_luts(n: int, dev: "Device", dsp: str) -> int:
    """PE rows of an N x N array whose multipliers are LUT logic under policy ``dsp``."""
    if dev.family != "ecp5" or dsp == "all":
        return 0
    return n if dsp == "requant" else lut_pe_rows(n, dev.capacity["dsp"])
