"""Generate the accelerator's Verilog and a JSON of its parameters.

Examples::

    python -m hw.flow.gen                          # 8x8 -> build/verilog/chanscale_8x8.v (+ .json)
    python -m hw.flow.gen --array 16x16 --out build/verilog
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from amaranth.back import verilog

from model.outputs import Outputs, dir_from_cli

from ..contract.params import ARRAY_HELP, array_from_cli
from ..contract.schedule import ARRAY_LATENCY, DECODE_CYCLES, FETCH_CYCLES, REQ_LATENCY, drain_cycles
from ..gateware.accel import Accelerator
from model.cli import OneLineParser


def generate(cfg, out_dir: str | os.PathLike = "build/verilog", name: str | None = None,
             platform=None) -> Path:
    """Write ``<name>.v`` and ``<name>.json``; returns the Verilog path. Files appear complete or
    not at all. ``platform``: None for the portable Verilog (simulation, lint, any FPGA tool), or
    ``hw.gateware.dsp.Ecp5Dsp`` for the ECP5 netlist whose multipliers are MULT18X18D instances."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = name or f"chanscale_{cfg.rows}x{cfg.cols}"
    t = time.time()
    text = verilog.convert(Accelerator(cfg), name=name, emit_src=False, platform=platform)
    meta = dict(top=name, params=cfg.to_dict(), latency=dict(array=ARRAY_LATENCY(cfg.rows), requant=REQ_LATENCY,
                fetch_cycles=FETCH_CYCLES, decode_cycles=DECODE_CYCLES, drain_cycles=drain_cycles(cfg.rows)),
                target="portable" if platform is None else repr(platform),
                clock="clk", reset="rst (synchronous, active high)", bus="s_axil_* (AXI4-Lite slave)",
                generate_seconds=round(time.time() - t, 1))
    files = Outputs()  # the Verilog and its parameters together, or neither
    files.text(out / (name + ".json"), json.dumps(meta, indent=2))
    files.text(out / (name + ".v"), text)
    files.commit()
    return out / (name + ".v")


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m hw.flow.gen", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--array", default="8x8", help=ARRAY_HELP)
    ap.add_argument("--out", default="build/verilog", help="output folder")
    args = ap.parse_args(argv)
    cfg = array_from_cli(args.array)
    if cfg is None or not dir_from_cli(args.out, "--out"):
        return 2
    path = generate(cfg, args.out)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
