"""The runtime manager (sw/manager.py) on hand-made libraries and traces with known best choices,
the frame accounting (sw/frames.py) against the model backend's counters and bus transactions,
the trace files (sw/traces.py) and ``sw/host.py --trace`` end to end."""
from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from hw.contract.params import ArrayConfig, parse_array
from hw.contract.program import build_program, pack_pixels
from model.data import load_split
from model.export import load_export
from sw import frames as fr
from sw import manager as mg
from sw import traces
from sw.driver import Driver
from sw.energy import OPPS
from sw.measure import RunConfig
from sw.model_device import BUS_TIMED, ModelBus

from conftest import REPO


def lib_of(acc, compute, transfer=None, energy=None, switch=0.0):
    """A library of len(acc) configurations; ``switch`` us between any two different ones."""
    n = len(acc)
    sw = np.full((n, n), float(switch))
    np.fill_diagonal(sw, 0.0)
    return mg.Library([(k + 1,) * 3 for k in range(n)], ["nominal"] * n, np.array(acc, float),
                      np.zeros(n) if transfer is None else np.array(transfer, float), np.array(compute, float),
                      np.array(compute, float) if energy is None else np.array(energy, float), sw, np.zeros((n, n)))


def trace_of(deadline, share=None, energy=None, floor=None):
    n = len(deadline)
    nan = np.full(n, np.nan)
    return traces.Trace("t", np.array(deadline, float), np.ones(n) if share is None else np.array(share, float),
                        nan if energy is None else np.array(energy, float),
                        nan if floor is None else np.array(floor, float))


def run(policy, lib, trace):
    correct = {g: np.ones(len(trace), bool) for g in lib.groups}
    return mg.simulate(policy, lib, trace, correct)


def test_most_accurate_that_fits_then_least_energy():
    lib = lib_of([0.80, 0.90, 0.90], [100, 150, 150], energy=[1, 3, 2])
    r = run(mg.Manager(lib), lib, trace_of([1000, 120, 1000]))
    assert r["pick"].tolist() == [2, 0, 0], "equal accuracy: the cheaper; a tight deadline: the faster"
    assert r["met"].all()


def test_accuracy_floor_takes_least_energy_above_it():
    lib = lib_of([0.80, 0.85, 0.90], [100, 150, 200], energy=[1, 2, 3])
    assert run(mg.Manager(lib), lib, trace_of([1000], floor=[0.84]))["pick"].tolist() == [1]
    assert run(mg.Manager(lib), lib, trace_of([1000], floor=[0.95]))["pick"].tolist() == [2], \
        "no configuration reaches the floor: the most accurate"


def test_energy_budget_is_respected():
    lib = lib_of([0.80, 0.90], [100, 150], energy=[1e6, 3e6])  # 1 uJ, 3 uJ
    r = run(mg.Manager(lib), lib, trace_of([1000, 1000], energy=[5, 2]))
    assert r["pick"].tolist() == [1, 0] and r["within_budget"].all()


def test_switch_cost_decides():
    """Moving to the accurate configuration costs 100 us once: not worth it under a 200 us
    deadline (150 + 100 > 190), worth it under 300 us (the switch frame fits)."""
    lib = lib_of([0.80, 0.90], [100, 150], switch=100.0)
    for policy in (mg.Manager(lib), mg.Oracle(lib)):
        r = run(policy, lib, trace_of([120] + [200] * 20))
        assert (r["pick"] == 0).all() and r["met"].all()
    r = run(mg.Manager(lib), lib, trace_of([120] + [300] * 20))
    assert r["pick"][-1] == 1 and r["met"].all()
    assert r["latency_us"][r["pick"].tolist().index(1)] == pytest.approx(250), "the switch frame pays 100 us"


def test_nobody_can_meet_it():
    lib = lib_of([0.80, 0.90], [100, 150])
    for policy in (mg.Manager(lib), mg.Oracle(lib)):
        r = run(policy, lib, trace_of([50] * 10))
        assert (r["pick"] == 0).all(), "the fastest, reported as misses"
        assert not r["met"].any()
        assert mg.summary("p", lib, r)["deadline_misses_pct"] == 100.0


def test_hidden_contention_is_learnt_from_latency():
    """The share drops to 0.5 unseen: the first frame at the lower share misses (nobody could
    know), then the manager runs the faster configuration; back at 1 it returns."""
    lib = lib_of([0.80, 0.90], [100, 150])
    share = [1.0] * 20 + [0.5] * 40 + [1.0] * 60
    r = run(mg.Manager(lib), lib, trace_of([200] * 120, share=share))
    assert r["pick"][:20].tolist() == [1] * 20
    assert not r["met"][20] and r["met"][21:].all()
    assert (r["pick"][21:60] == 0).all() and r["pick"][-1] == 1
    o = run(mg.Oracle(lib), lib, trace_of([200] * 120, share=share))
    assert o["met"].all()


def test_hysteresis_bounds_switching():
    """A deadline alternating every frame between a value that fits the slower configuration
    and one that does not: going down is immediate, going up waits DWELL frames."""
    lib = lib_of([0.80, 0.90], [100, 150])
    r = run(mg.Manager(lib), lib, trace_of([140, 400] * 50))
    switches = int((r["pick"][1:] != r["pick"][:-1]).sum())
    assert switches <= 2 * math.ceil(100 / (mg.DWELL + 1))
    assert r["met"].all()


def test_oracle_is_never_later_than_needed():
    rng = np.random.default_rng(0)
    lib = lib_of([0.7, 0.8, 0.9], [50, 100, 150], switch=10.0)
    t = trace_of(rng.uniform(70, 300, 500), share=rng.uniform(0.5, 1, 500))
    o = run(mg.Oracle(lib), lib, t)
    feasible = t.deadline_us >= 50 / t.share + 10  # the fastest with a switch fits
    assert o["met"][feasible].all()


# ------------------------------------------------------------------ frame accounting


class CountingBus(ModelBus):
    """The model backend, counting the bus transactions the driver performs."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.writes = self.reads = 0

    async def write32(self, addr, value):
        self.writes += 1
        await super().write32(addr, value)

    async def read32(self, addr):
        self.reads += 1
        return await super().read32(addr)


@pytest.fixture(scope="module")
def shipped():
    ex = load_export()
    cfg = parse_array("8x8")
    return ex, cfg, build_program(ex, cfg), load_split("test")


def test_frame_accounting_equals_the_model_backend(shipped):
    """Per frame: the bus transactions sw.frames charges are the driver's, the counters are the
    same for every image (the schedule does not read the data), and a width switch costs the
    writes switch_writes says."""
    ex, cfg, program, test = shipped
    classes = ex.heads[ex.groups].out_channels
    bus = CountingBus(cfg)
    drv = Driver(bus, cfg)
    t = fr.frame_transactions(program, classes)
    from sw.measure import configure, frame
    for groups, uniform in (((1, 1, 1), 1), ((1, 2, 4), None)):
        rc = RunConfig(groups, uniform)
        if groups == (1, 1, 1):
            asyncio.run(drv.load_program(program))
        w0 = bus.writes
        asyncio.run(configure(drv, program, rc))
        assert bus.writes - w0 == fr.switch_writes(program, uniform is not None)
        seen = []
        for i in (0, 1, 2):
            w0, r0 = bus.writes, bus.reads
            f = asyncio.run(frame(drv, program, test.images[i], classes))
            assert (bus.writes - w0, bus.reads - r0) == (t.writes, t.reads)
            c = f["counters"]
            assert c["BUS_WR_BYTES"] == 4 * (t.writes - 1), "every write but CLEAR_COUNTERS' is counted"
            seen.append({k: v for k, v in c.items() if k not in BUS_TIMED})
        assert seen[0] == seen[1] == seen[2]


def test_image_crosses_the_bus_four_pixels_per_write(shipped):
    ex, cfg, program, test = shipped
    t = fr.frame_transactions(program, ex.heads[ex.groups].out_channels)
    assert t.writes == 1 + 28 * 28 // 4 + 3


def test_pack_pixels_layout():
    px = np.arange(10 * 2, dtype=np.int8).reshape(10, 2)  # 10 pixels, 2 channels
    packed = pack_pixels(px, 2)
    assert packed.shape == (5, 4)
    assert packed.reshape(-1, 2).tolist() == px.tolist()
    assert pack_pixels(px[:9], 2)[-1].tolist() == [16, 17, 0, 0]
    assert [ArrayConfig(rows=8, cols=8, img_channels=c).img_pack for c in (1, 2, 3, 4, 5, 8)] == [4, 2, 1, 1, 1, 1]


def test_frame_cost_from_counters():
    """Latency and energy of a frame from invented counters, computed here by hand."""
    cfg = parse_array("8x8")
    t = fr.Transactions(writes=10, reads=4)
    opp = OPPS["low"]
    c = fr.frame_cost({"BUSY_CYCLES": 1000, "MACS": 0}, (1, 1, 1), opp, cfg, t)
    assert c.compute_us == pytest.approx(1000 / opp.mhz)
    assert c.transfer_us == pytest.approx((10 * fr.BUS_CYCLES["write"] + 4 * fr.BUS_CYCLES["read"]) / opp.mhz)
    assert c.latency_us(0.5) == pytest.approx(c.transfer_us + 2 * c.compute_us)
    from sw.energy import UNITS, V_REF
    offchip = 14 * UNITS["offchip_32b"].pj * (opp.volts / V_REF) ** 2
    leak = UNITS["leak_pe"].pj * 100 / opp.mhz * 64 * (opp.volts / V_REF) * 1000
    assert c.energy_pj == pytest.approx(offchip + leak)


def test_switch_cost_of_an_operating_point_change():
    cfg = parse_array("8x8")
    a = fr.FrameCost((4, 4, 4), "nominal", 1.0, 1.0, 1.0)
    b = fr.FrameCost((4, 4, 4), "turbo", 1.0, 1.0, 1.0)
    us, pj = fr.switch_cost(a, b, None, cfg)
    assert us == fr.SETTLE_US and pj > 0
    assert fr.switch_cost(a, a, None, cfg) == (0.0, 0.0)


# ------------------------------------------------------------------ traces and the CLI


def test_shipped_traces_are_deterministic_and_in_range():
    for name in traces.SHIPPED:
        a, b = traces.shipped(name, 500, 100.0, 1e6), traces.shipped(name, 500, 100.0, 1e6)
        assert np.array_equal(a.deadline_us, b.deadline_us) and np.array_equal(a.share, b.share)
        assert (a.deadline_us > 0).all() and ((a.share > 0) & (a.share <= 1)).all()
    w = traces.shipped("walk", 2000, 100.0, 1e6)
    assert w.deadline_us.min() >= 30 - 1e-9 and w.deadline_us.max() <= 250 + 1e-9


def test_csv_trace_columns(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("deadline_us,share,energy_uj,accuracy_floor\n100,0.5,,0.8\n200,,3,\n")
    t = traces.load_csv(str(p))
    assert t.deadline_us.tolist() == [100, 200] and t.share.tolist() == [0.5, 1.0]
    assert math.isnan(t.energy_uj[0]) and t.energy_uj[1] == 3
    assert t.accuracy_floor[0] == 0.8 and math.isnan(t.accuracy_floor[1])


def test_host_trace_end_to_end(tmp_path):
    """``--trace FILE`` on the shipped export: every policy, JSON and CSV per frame, the plot."""
    p = tmp_path / "t.csv"
    p.write_text("deadline_us,share\n" + "".join(f"{d},{s}\n" for d, s in [(2000, 1)] * 5 + [(300, 0.5)] * 5))
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, str(REPO / "sw" / "host.py"), "--trace", str(p), "--json", str(out / "t.json"),
                        "--csv", str(out / "t.csv"), "--plot", str(out / "plots")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads((out / "t.json").read_text())
    names = [row["policy"] for row in doc["policies"]]
    assert names == ["manager", "full-max", "dvfs", "uniform-dvfs", "profiles", "oracle"]
    for row in doc["policies"]:
        f = doc["frames"][row["policy"]]
        assert len(f["latency_us"]) == 10
        assert row["deadline_misses_pct"] == pytest.approx(100 * (1 - np.mean(f["deadline_met"])))
        assert row["accuracy"] == pytest.approx(np.mean(f["correct"]))
    lines = (out / "t.csv").read_text().splitlines()
    assert len(lines) == 1 + 6 * 10 and lines[0].startswith("policy,frame,groups,opp")
    assert (out / "plots" / "trace_t.png").stat().st_size > 1000
