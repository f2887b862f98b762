"""Static timing over every endpoint of a routed design, from the SDF nextpnr writes.

nextpnr's report names one critical path per clock; closing timing one worst path per place and
route run (15-20 minutes on the 8x8) hides how many paths are short and where they fall. Its SDF
(``--sdf``) holds every cell's delays (``IOPATH``, clock-to-output on a clock pin), every routed
net's delay (``INTERCONNECT``) and every setup check (``SETUPHOLD``/``SETUP``); this module
computes each endpoint's latest arrival from them (a longest path over the cell graph, launched
at clock-to-output, single clock, no skew: the ECP5 global network's delays are zero in the SDF)
and its slack against a clock period, and groups the failing endpoints by the register they
start and end at (``group_name``: bit suffixes and Yosys' ``_TRELLIS_FF_Q_<n>`` stripped).

Delays are the triple's maximum (slow corner) of the rise and fall delays, as nextpnr's own
timing uses. The worst slack it computes is nextpnr's critical path: ``python -m hw.flow.sta file.sdf
--period 10`` prints it next to the groups (checked in tests/test_sta.py against nextpnr's
report on a routed design).

Command line::

    python -m hw.flow.sta build/synth/8x8_ecp5_datapath_lutpe1/8x8_ecp5-45k.sdf --period 10 --paths 3
"""
from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from model.outputs import OutputError, check_file, write_text
from model.cli import OneLineParser

__all__ = ["Sdf", "parse_sdf", "analyse", "group_name", "strip_packing", "main"]

_TRIPLE = re.compile(r"\(([-\d.:]*)\)")
# the suffixes Yosys and nextpnr give a cell after the net it drives (``..._TRELLIS_FF_Q_3``)
_PACKING = re.compile(r"(_(TRELLIS_FF|LUT4|CCU2C|PFUMX|L6MUX21|TRELLIS_COMB|SB_LUT4|SB_DFF\w*|SB_CARRY|"
                      r"DP16KD|MULT18X18D|SB_MAC16|SB_RAM40_4K)_\w+)+$")
_BIT = re.compile(r"(\[\d+\]|\.\d+|_\d+)+$")


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", r"\1", name)


def _split_pin(text: str) -> tuple[str, str]:
    """``inst/port`` (the DIVIDER ``/``; an escaped ``\\/`` belongs to the name) -> (inst, port)."""
    i = len(text) - 1
    while i >= 0:
        if text[i] == "/" and (i == 0 or text[i - 1] != "\\"):
            return _unescape(text[:i]), _unescape(text[i + 1:])
        i -= 1
    raise ValueError(f"SDF pin without an instance: {text!r}")


def _delay(fields: list[str]) -> float:
    """The worst (max corner, rise or fall) of ``(min:typ:max)`` triples, in the SDF's unit."""
    worst = 0.0
    for f in fields:
        for v in f.split(":"):
            if v:
                worst = max(worst, float(v))
    return worst


@dataclass
class Sdf:
    """The timing graph of an SDF: nodes are (instance, port); ``edges`` are its cells' arcs
    (input to output pin) and its routed nets (driver to sink), with their delays."""
    timescale_ns: float = 1e-3
    edges: dict = field(default_factory=lambda: defaultdict(list))   # (inst, port) -> [((inst, port), d)]
    launch: dict = field(default_factory=lambda: defaultdict(list))  # inst -> [(out, clk-to-out)]
    setup: dict = field(default_factory=dict)                         # (inst, port) -> setup time


def parse_sdf(path) -> Sdf:
    """Parse nextpnr's SDF (one statement per line, as it writes them)."""
    sdf = Sdf()
    clocks = defaultdict(set)   # inst -> its clock pins (the reference of its timing checks)
    iopaths = []                # (inst, in, out, delay)
    inst = None
    with open(path) as f:
        for line in f:
            s = line.strip()
            if s.startswith("(TIMESCALE"):
                m = re.match(r"\(TIMESCALE\s+([\d.]+)\s*(\w+)\)", s)
                if m:
                    scale = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0, "ps": 1e-3, "fs": 1e-6}[m.group(2)]
                    sdf.timescale_ns = float(m.group(1)) * scale
            elif s.startswith("(INSTANCE"):
                inst = _unescape(s[len("(INSTANCE"):-1].strip())
            elif s.startswith("(INTERCONNECT"):
                parts = s[1:].split(None, 3)
                src, dst = _split_pin(parts[1]), _split_pin(parts[2])
                sdf.edges[src].append((dst, _delay(_TRIPLE.findall(parts[3]))))
            elif s.startswith("(IOPATH"):
                parts = s[1:].split(None, 3)
                pin_in = re.sub(r"^\((pos|neg)edge\s+", "", parts[1]).rstrip(")")
                iopaths.append((inst, _unescape(pin_in), _unescape(parts[2]), _delay(_TRIPLE.findall(parts[3]))))
            elif s.startswith("(SETUPHOLD") or s.startswith("(SETUP "):
                m = re.match(r"\(SETUP(HOLD)?\s+\((?:pos|neg)edge\s+(\S+)\)\s+\((?:pos|neg)edge\s+(\S+)\)\s+(.*)$", s)
                if not m:
                    raise ValueError(f"{path}: timing check not understood: {s}")
                data, clk = _unescape(m.group(2)), _unescape(m.group(3))
                clocks[inst].add(clk)
                setup = _delay(_TRIPLE.findall(m.group(4))[:1])
                sdf.setup[(inst, data)] = max(setup, sdf.setup.get((inst, data), 0.0))
    for inst, pin_in, out, d in iopaths:
        if pin_in in clocks[inst] or re.match(r"CLK", pin_in):
            sdf.launch[inst].append((out, d))
        else:
            sdf.edges[(inst, pin_in)].append(((inst, out), d))
    return sdf


def strip_packing(name: str) -> str:
    """A cell's name without the packing suffixes (``..._TRELLIS_FF_Q``, ``..._LUT4_Z``)."""
    return _PACKING.sub("", name)


def group_name(inst: str) -> str:
    """A register's name without its packing suffixes and its bit index."""
    base = strip_packing(inst)
    return _BIT.sub("", base) or base


def analyse(sdf: Sdf, period_ns: float, max_paths: int = 0) -> dict:
    """Latest arrival at every endpoint; returns {worst_slack_ns, fmax_mhz, endpoints,
    failing, groups: [{start, end, endpoints, worst_slack_ns}], paths: [...]} (``paths``: the
    ``max_paths`` worst endpoints' paths, each a list of (pin, arrival_ns))."""
    arrival: dict = {}
    pred: dict = {}
    start_of: dict = {}
    # Kahn's order over the pins
    succ = sdf.edges
    indeg = defaultdict(int)
    for dsts in succ.values():
        for dst, _ in dsts:
            indeg[dst] += 1
    for inst, outs in sdf.launch.items():
        for out, d in outs:
            node = (inst, out)
            if d > arrival.get(node, -1.0):
                arrival[node], start_of[node] = d, inst
    nodes = set(succ) | set(indeg) | set(arrival)
    ready = [n for n in nodes if indeg[n] == 0]
    seen = 0
    while ready:
        n = ready.pop()
        seen += 1
        a = arrival.get(n)
        for m, d in succ.get(n, ()):
            if a is not None and a + d > arrival.get(m, -1.0):
                arrival[m], pred[m], start_of[m] = a + d, n, start_of[n]
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if seen != len(nodes):
        raise ValueError("the SDF's timing graph has a combinational loop")
    unit = sdf.timescale_ns
    ends = []
    for node, su in sdf.setup.items():
        if node in arrival:
            ends.append((period_ns - (arrival[node] + su) * unit, node))
    ends.sort()
    groups: dict = {}
    for slack, node in ends:
        if slack >= 0:
            break
        key = (group_name(start_of[node]), group_name(node[0]))
        g = groups.setdefault(key, {"start": key[0], "end": key[1], "endpoints": 0, "worst_slack_ns": slack})
        g["endpoints"] += 1
    paths = []
    for slack, node in ends[:max_paths]:
        path, n = [], node
        while n is not None:
            path.append((f"{n[0]}/{n[1]}", round(arrival[n] * unit, 3)))
            n = pred.get(n)
        paths.append({"slack_ns": round(slack, 3), "pins": path[::-1]})
    worst = ends[0][0] if ends else period_ns
    return {
        "period_ns": period_ns,
        "worst_slack_ns": round(worst, 3),
        "fmax_mhz": round(1e3 / (period_ns - worst), 2) if period_ns - worst > 0 else None,
        "endpoints": len(ends),
        "failing": sum(1 for s, _ in ends if s < 0),
        "groups": sorted(({**g, "worst_slack_ns": round(g["worst_slack_ns"], 3)} for g in groups.values()),
                         key=lambda g: g["worst_slack_ns"]),
        "paths": paths,
    }


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m hw.flow.sta", description=__doc__.split("\n\n")[0])
    ap.add_argument("sdf", help="an SDF written by nextpnr --sdf")
    ap.add_argument("--period", type=float, default=10.0, help="clock period in ns (default 10)")
    ap.add_argument("--paths", type=int, default=1, help="print the N worst endpoints' paths")
    ap.add_argument("--json", help="write the analysis here")
    args = ap.parse_args(argv)
    if not Path(args.sdf).is_file():
        print(f"error: no SDF at {args.sdf} (run nextpnr with --sdf, or python -m hw.flow.synth, which writes one)",
              file=sys.stderr)
        return 2
    if not 0 < args.period < 1e6:  # also refuses nan and inf
        print("error: --period must be a positive clock period in ns", file=sys.stderr)
        return 2
    try:
        json_path = check_file(args.json, "--json") if args.json else None
    except OutputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        res = analyse(parse_sdf(args.sdf), args.period, args.paths)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{res['endpoints']} endpoints, {res['failing']} short of {args.period} ns; worst slack "
          f"{res['worst_slack_ns']} ns (Fmax {res['fmax_mhz']} MHz)")
    for g in res["groups"]:
        print(f"  {g['worst_slack_ns']:7.3f} ns  {g['endpoints']:5d}  {g['start']} -> {g['end']}")
    for p in res["paths"]:
        print(f"path, slack {p['slack_ns']} ns:")
        for pin, t in p["pins"]:
            print(f"  {t:7.3f}  {pin}")
    if json_path:
        write_text(json_path, json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
