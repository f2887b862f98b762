"""Logic depth of the Yosys netlist: the deepest register-to-register paths in unit delays, a
structural estimate that needs no place and route.
"""
from __future__ import annotations

import re

from .nextpnr import short_cell


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
        return short_cell(name) + (f"[{i}]" if i is not None else "")

    def end_name(b, cname, t):
        # a flip-flop is named by the register its Q drives, a block RAM or DSP by its cell
        if t.startswith(("TRELLIS_FF", "SB_DFF")):
            q = [x for p, bits in mod["cells"][cname]["connections"].items() if p in ("Q", "O")
                 for x in bits if isinstance(x, int)]
            if q and q[0] in names:
                return _reg_name(short_cell(names[q[0]][0]))
        if b in names:  # else the net it samples
            return _reg_name(short_cell(names[b][0]))
        return _reg_name(short_cell(cname))

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
