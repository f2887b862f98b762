"""The Yosys step: the synthesis script per family, its resource counts, the fit check.
"""
from __future__ import annotations

import json
from pathlib import Path

from .devices import Device, HARD


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
            name = HARD[dev.family].get(key, {"luts": "LUTs", "ffs": "FFs"}.get(key, key))
            over.append(f"{res[key]} of {cap} {name}")
    return "does not fit: " + ", ".join(over) if over else None
