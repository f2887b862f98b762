"""Reading nextpnr's results: utilisation, Fmax, a failed run's overflow, the critical path,
and every endpoint's slack from its SDF (``hw.flow.sta``).
"""
from __future__ import annotations

import re
from pathlib import Path

from . import sta
from .devices import PNR_UTIL


_UTIL_RE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def pnr_overflow(log_text: str) -> str | None:
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


def pnr_resources(rep: dict, family: str, res: dict, util: dict) -> dict:
    """Yosys' counts ``res`` with nextpnr's where its utilisation ``util`` has them; the device's
    capacities in ``rep`` from the same lines."""
    placed = dict(res)
    for ours, bel in PNR_UTIL[family].items():
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


def short_cell(name: str) -> str:
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
    start = short_cell(path[0]["from"]["cell"]) if path and "from" in path[0] else "?"
    end = short_cell(path[-1]["to"]["cell"]) if path and "to" in path[-1] else "?"
    line = (f"{start} -> {end}: {total:.2f} ns = {logic:.2f} ns logic ({len(cells)} cells) "
            f"+ {routing:.2f} ns routing")
    return dict(line=line, total_ns=round(total, 3), logic_ns=round(logic, 3),
                routing_ns=round(routing, 3), levels=len(cells), start=start, end=end,
                through=[short_cell(c) for c in cells])


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
