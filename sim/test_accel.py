"""pytest runners of the cocotb testbenches in ``tb_accel.py`` (``make sim``, ``make test``).

Tiers (one simulator build per simulator and array, cached under ``build/sim/``):

* ``ci`` (no marker; part of ``make test``): a 4x4 array (``SIM_ARRAY``) on every selected
  simulator, a seeded subset sized so both simulators finish in a few minutes on 2 cores
  (Icarus runs ~5k cycles/s, so its random layers are small and the network runs two widths);
* ``full`` (marker ``slow``; ``make sim``): the default 8x8 array, more random layers, and the
  shipped network at every width;
* ``campaign`` (markers ``campaign`` and ``slow``; ``make campaign``): at least 500 random
  layers (``LAYERS``) on Verilator, 8x8.

The expected values are all on the cocotb side (``model.golden``, ``hw.contract.schedule``); this file
only chooses what to run.
"""
from __future__ import annotations

import os

import pytest


def env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    return int(text, 0) if text else default


CI_ARRAY = os.environ.get("SIM_ARRAY", "4x4")
FULL_ARRAY = "8x8"

# (tier, simulator) -> cocotb-side parameters (TB_<NAME>). budget: most cycles of one random layer.
PARAMS = {
    ("ci", "verilator"): dict(layers=16, classifiers=4, budget=20_000, images=1, widths="4,1,3,2", mixed=2),
    ("ci", "icarus"): dict(layers=4, classifiers=2, budget=2_500, images=1, widths="1", mixed=0),
    ("full", "verilator"): dict(layers=60, classifiers=10, budget=30_000, images=3, widths="4,1,3,2", mixed=3),
    ("full", "icarus"): dict(layers=12, classifiers=3, budget=6_000, images=1, widths="4,1,3,2", mixed=1),
}
ARRAYS = {"ci": CI_ARRAY, "full": FULL_ARRAY}

tiers = pytest.mark.parametrize("tier", ["ci", pytest.param("full", marks=pytest.mark.slow)])


def simulators(*names):
    """Restrict a test's ``sim`` parameter to ``names`` (still filtered by SIM)."""
    def mark(fn):
        fn.simulators = names
        return fn
    return mark


def params(tier: str, sim: str, *keys) -> dict:
    p = PARAMS[(tier, sim)]
    out = {k: p[k] for k in keys}
    if "layers" in out:
        out["layers"] = env_int("LAYERS", out["layers"])
    return out


@tiers
def test_register_map(rtl, sim, tier):
    """Reset values, rw/ro/w1 behaviour, WSTRB, DECERR, window round trips, bus counters."""
    rtl.run(sim, ARRAYS[tier], "register_map")


@tiers
def test_random_layers(rtl, sim, tier):
    """Seeded random conv and classifier layers: bit-exact outputs, exact counters and cycles."""
    rtl.run(sim, ARRAYS[tier], "random_conv_layers", **params(tier, sim, "layers", "classifiers", "budget"))


@tiers
def test_trained_network(rtl, sim, tier):
    """The shipped network on Fashion-MNIST test images at every width, weights loaded once."""
    rtl.run(sim, ARRAYS[tier], "trained_network", **params(tier, sim, "images", "widths", "mixed"))


@tiers
def test_bad_configurations(rtl, sim, tier):
    """Every error code, as hw.contract.schedule predicts it; a good run after each."""
    rtl.run(sim, ARRAYS[tier], "bad_configurations", **params(tier, sim, "budget"))


@tiers
def test_abort_and_reset(rtl, sim, tier):
    """ABORT and rst in the middle of a layer; SLVERR on windows while busy; exact reruns."""
    rtl.run(sim, ARRAYS[tier], "abort_and_reset", **params(tier, sim, "budget"))


@pytest.mark.slow
@pytest.mark.campaign
@simulators("verilator")
def test_campaign(rtl, sim):
    """At least 500 random layers (LAYERS) on Verilator, 8x8, plus 50 classifiers."""
    layers = env_int("LAYERS", 500)
    rtl.run(sim, FULL_ARRAY, "random_conv_layers", layers=layers, classifiers=max(1, layers // 10), budget=30_000)


@simulators("icarus")
def test_ecp5_netlist(rtl, sim):
    """The netlist `make synth` builds for an ECP5 (multipliers as MULT18X18D instances with their
    own registers, hw/gateware/dsp.py; the last PE row with LUT multipliers), simulated with the
    primitive's Verilog model: seeded random layers bit-exact, counters and cycles exact."""
    rtl.run(sim, CI_ARRAY, "random_conv_layers", target="ecp5",
            **params("ci", sim, "layers", "classifiers", "budget"))


@pytest.mark.slow
@simulators("verilator")
def test_ecp5_netlist_full(rtl, sim):
    """The ECP5 netlist of the 8x8 array: random layers and the shipped network at every width."""
    rtl.run(sim, FULL_ARRAY, "random_conv_layers", target="ecp5",
            **params("full", sim, "layers", "classifiers", "budget"))
    rtl.run(sim, FULL_ARRAY, "trained_network", target="ecp5", **params("full", sim, "images", "widths", "mixed"))
