"""The sequencer's parts on their own contracts (the whole sequencer is checked cycle for cycle
against hw.contract.schedule in tests/test_hw_accel.py)."""
import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from hw.gateware.sequencer import Sequencer
from hw.gateware.sequencer.context import C16, Context
from hw.gateware.sequencer.divider import Divider


def test_divider_quotient_and_remainder_after_16_steps():
    rng = random.Random(7)
    cases = [(0, 1), (1, 1), (65535, 1), (65535, 65535), (1000, 7), (4096, 64)]
    cases += [(rng.randrange(1 << C16), rng.randrange(1, 1 << C16)) for _ in range(40)]
    m = Module()
    div = Divider(m, "div")
    start, step = Signal(), Signal()
    num, den = Signal(C16), Signal(C16)
    with m.If(start):
        div.start(num, den)
    with m.Elif(step):
        div.step()
    sim = Simulator(m)
    sim.add_clock(1e-8)

    async def tb(ctx):
        for a, b in cases:
            ctx.set(num, a)
            ctx.set(den, b)
            ctx.set(start, 1)
            await ctx.tick()
            ctx.set(start, 0)
            ctx.set(step, 1)
            await ctx.tick().repeat(C16)
            ctx.set(step, 0)
            assert (ctx.get(div.q), ctx.get(div.r)) == divmod(a, b), f"{a} / {b}"

    sim.add_testbench(tb)
    sim.run()


def test_context_names_each_signal_once_and_in_order():
    ctx = Context()
    ctx.give({"a": 1, "b": 2}, "a b")
    assert ctx.take("b a") == [2, 1]
    with pytest.raises(AttributeError, match="made by two parts"):
        ctx.give({"a": 3}, "a")
    with pytest.raises(AttributeError, match=r"no part has made \['c'\]"):
        ctx.take("a c")


def test_parts_run_in_the_documented_order():
    import hw.gateware.sequencer as package
    doc = package.__doc__
    listed = [line.split("``")[1] for line in doc.splitlines() if line.startswith("``")]
    assert listed == [p.__name__.rsplit(".", 1)[1] for p in Sequencer.PARTS]


def test_simulator_cache_key_covers_every_gateware_file():
    from pathlib import Path

    from sim.runner import REPO, design_sources
    sources = set(design_sources())
    for path in sorted(Path(REPO, "hw", "gateware").rglob("*.py")) + sorted(Path(REPO, "hw", "contract").glob("*.py")):
        if path.name in ("program.py",):  # the host's mapping, not part of the Verilog
            continue
        assert path in sources, f"{path.relative_to(REPO)} is not in the simulator build's cache key"
