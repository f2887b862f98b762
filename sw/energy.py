"""Energy = sum over events of (count x unit energy); the counts are the accelerator's own
performance counters (or the model backend's predictions of them, which are equal).

Unit energies are at the reference voltage ``V_REF`` and live in ``UNITS`` with their sources.
Operating points (DVFS) scale dynamic energy with (V / V_REF)**2 and leakage with V x time
(leakage power proportional to V, energy = power x cycles / f).
"""
from __future__ import annotations

from dataclasses import dataclass

V_REF = 0.9  # volts at which UNITS apply (45 nm nominal)


@dataclass(frozen=True)
class Unit:
    pj: float  # energy per event at V_REF, picojoules
    per: str  # what one event is
    source: str


# One table; nothing else in sw/ or hw/ holds an energy number.
UNITS = {
    "mac": Unit(0.2 + 0.1, "active PE-cycle: 8-bit multiply + 32-bit add",
                "Horowitz, ISSCC 2014, 45 nm: 8-bit mult 0.2 pJ, 32-bit add 0.1 pJ"),
    "pe_reg": Unit(1.0 + 0.25, "active PE-cycle: 32-bit partial-sum and 8-bit activation registers",
                   "Horowitz 2014 / Han et al. 2015: register file ~1 pJ per 32-bit word"),
    "sram_32b": Unit(5.0, "32 bits read from or written to an on-chip buffer",
                     "Horowitz 2014 / Han et al. 2015: SRAM (8-32 KB) ~5 pJ per 32-bit word"),
    "offchip_32b": Unit(640.0, "32 bits moved over the bus from/to off-chip DRAM",
                        "Horowitz 2014 / Han et al. 2015: DRAM ~640 pJ per 32-bit word"),
    "idle_clock": Unit(0.05, "ungated idle PE-cycle: clock pins of ~40 flip-flops",
                       "assumption (no cited figure); this accelerator gates every idle PE, so the count is 0"),
    "leak_pe": Unit(0.02, "PE-cycle of leakage at 100 MHz (2 uW per PE)",
                    "assumption: 45 nm low-power leakage, ~2 uW per int8 MAC PE with its registers"),
}

# Buffer word sizes in bytes (docs/design.md), for SRAM energy per access.
def buffer_bytes(cfg) -> dict:
    n = cfg.rows
    return {"IMG": cfg.img_channels * cfg.img_pack, "ACTA": n, "ACTB": n, "WGT": n, "PRM": 8 * n, "ACC": 4 * n, "LINE": n,
            "LOGIT": 4}


@dataclass(frozen=True)
class OperatingPoint:
    name: str
    volts: float
    mhz: float
    doc: str


# Operating points: a labelled assumption, not a measurement. The DVFS set follows the shape of a
# published accelerator's range (UNPU, Lee et al., ISSCC 2018, 65 nm: 0.63-1.1 V, 5-200 MHz):
# frequency falls faster than voltage towards threshold. It is anchored at UNITS' reference point
# (0.9 V, 100 MHz) and capped at the clock this RTL closes at on the ECP5 (126 MHz at speed grade
# 8, docs/fpga.md). The FPGA set is what a user of the ECP5 build gets: the core voltage is fixed,
# only the clock scales (capped at speed grade 6's 100 MHz), so energy per frame falls only by
# leakage time.
OPPS = {
    "min": OperatingPoint("min", 0.65, 25.0, "DVFS: deep low power, a quarter of nominal speed"),
    "low": OperatingPoint("low", 0.75, 50.0, "DVFS: half speed"),
    "nominal": OperatingPoint("nominal", 0.90, 100.0, "the reference point of UNITS"),
    "turbo": OperatingPoint("turbo", 1.00, 125.0, "DVFS: overdrive, at the ECP5 speed-grade-8 clock"),
    "fpga-25": OperatingPoint("fpga-25", V_REF, 25.0, "FPGA: clock scaled, voltage fixed"),
    "fpga-50": OperatingPoint("fpga-50", V_REF, 50.0, "FPGA: clock scaled, voltage fixed"),
    "fpga-100": OperatingPoint("fpga-100", V_REF, 100.0, "FPGA: the ECP5 speed-grade-6 clock"),
}
OPP_SETS = {"dvfs": ("min", "low", "nominal", "turbo"), "fpga": ("fpga-25", "fpga-50", "fpga-100")}


COMPONENTS = ("mac", "pe_registers", "buffers", "offchip", "idle_clock", "leakage")


def energy(counters: dict, cfg, opp: OperatingPoint, cycles: int | None = None, bus_bytes: int | None = None,
           ungated_idle_pe_cycles: int = 0) -> dict:
    """Energy (pJ) by component for a set of counter values.

    ``cycles`` (default BUSY_CYCLES) sets latency and leakage; ``bus_bytes`` (default
    BUS_RD_BYTES + BUS_WR_BYTES) is charged as off-chip traffic.
    """
    dyn = (opp.volts / V_REF) ** 2
    cycles = counters.get("BUSY_CYCLES", 0) if cycles is None else cycles
    if bus_bytes is None:
        bus_bytes = counters.get("BUS_RD_BYTES", 0) + counters.get("BUS_WR_BYTES", 0)
    macs = counters.get("MACS", 0)
    sram_words = 0.0
    for buf, nbytes in buffer_bytes(cfg).items():
        accesses = counters.get(f"{buf}_RD", 0) + counters.get(f"{buf}_WR", 0)
        sram_words += accesses * nbytes / 4
    n2 = cfg.rows * cfg.cols
    seconds = cycles / (opp.mhz * 1e6)
    # leak_pe is per PE-cycle at 100 MHz and V_REF: power = pj * 100e6; scale with V, times time
    leak_power_w = UNITS["leak_pe"].pj * 1e-12 * 100e6 * n2 * (opp.volts / V_REF)
    out = {
        "mac": macs * UNITS["mac"].pj * dyn,
        "pe_registers": macs * UNITS["pe_reg"].pj * dyn,
        "buffers": sram_words * UNITS["sram_32b"].pj * dyn,
        "offchip": bus_bytes / 4 * UNITS["offchip_32b"].pj * dyn,
        "idle_clock": ungated_idle_pe_cycles * UNITS["idle_clock"].pj * dyn,
        "leakage": leak_power_w * seconds * 1e12,
    }
    out["total"] = sum(out[c] for c in COMPONENTS)
    out["latency_us"] = seconds * 1e6
    return out


def units_table() -> str:
    """Markdown table of UNITS (for the README)."""
    rows = ["| event | pJ at %.1f V | one event is | source |" % V_REF, "| --- | ---: | --- | --- |"]
    for k, u in UNITS.items():
        rows.append(f"| {k} | {u.pj:g} | {u.per} | {u.source} |")
    return "\n".join(rows)
