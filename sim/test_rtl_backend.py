"""The host's RTL backends (``sw/rtl.py`` + ``sim/tb_host.py``) against its model backend.

The same measurement coroutine runs on the RTL (through cocotbext-axi) and on
``sw.model_device.ModelBus``; every counter the model predicts, LAYER_CYCLES and the logits
must be equal for every run: the whole network per image and every descriptor alone, at each
configuration. The logits must also equal ``model.golden``'s.

* CI (``make test``): Verilator on the CI array (4x4), the narrowest width and one non-uniform
  configuration, one image;
* marker ``slow``: the same on Icarus; and ``python sw/host.py --backend verilator`` at 8x8,
  every width plus a non-uniform configuration, compared field by field with the model
  backend's report.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from hw.contract.program import build_program
from model import golden
from model.data import load_split
from model.export import load_export
from sw.driver import Driver
from sw.measure import RunConfig, measure
from sw.model_device import BUS_TIMED, ModelBus

from sim.runner import REPO, SimError, array_config
from sim.test_accel import CI_ARRAY, simulators



def session_diffs(rtl: dict, model: dict) -> list[str]:
    """Every difference between two measurement sessions, in the fields the model predicts."""
    out = []

    def counters(a, b, where):
        for k in sorted(set(a) | set(b)):
            if k not in BUS_TIMED and a.get(k) != b.get(k):
                out.append(f"{where} {k}: RTL {a.get(k)}, model {b.get(k)}")
        if a["CYCLES"] < a["BUSY_CYCLES"]:
            out.append(f"{where}: RTL CYCLES {a['CYCLES']} < BUSY_CYCLES {a['BUSY_CYCLES']}")

    counters(rtl["load"], model["load"], "program load")
    assert [c["name"] for c in rtl["configs"]] == [c["name"] for c in model["configs"]]
    for cr, cm in zip(rtl["configs"], model["configs"]):
        for i, (ir, im) in enumerate(zip(cr["images"], cm["images"])):
            counters(ir["counters"], im["counters"], f"{cr['name']} image {i}")
            if ir["layer_cycles"] != im["layer_cycles"]:
                out.append(f"{cr['name']} image {i} LAYER_CYCLES: RTL {ir['layer_cycles']}, model {im['layer_cycles']}")
            if ir["logits"] != im["logits"]:
                out.append(f"{cr['name']} image {i} logits: RTL {ir['logits']}, model {im['logits']}")
        for j, (lr, lm) in enumerate(zip(cr["layers"], cm["layers"])):
            counters(lr, lm, f"{cr['name']} descriptor {j} alone")
    return out


def _compare_backends(sim: str, configs: list) -> None:
    from sw.rtl import run_rtl
    cfg = array_config(CI_ARRAY)
    ex = load_export()
    program = build_program(ex, cfg)
    test = load_split("test")
    images = test.images[7:8]
    classes = ex.heads[ex.groups].out_channels
    try:
        rtl = run_rtl(sim, cfg, program, configs, images, classes, progress=False)
    except SimError as e:
        pytest.fail(str(e), pytrace=False)
    model = asyncio.run(measure(Driver(ModelBus(cfg), cfg), program, configs, images, classes))
    diffs = session_diffs(rtl, model)
    assert not diffs, f"{len(diffs)} differences between the {sim} RTL and the model backend:\n" + "\n".join(diffs[:20])
    for c, rc in zip(configs, rtl["configs"]):
        ref = golden.run(ex, images, groups=c.groups, keep_acts=False).logits
        assert [img["logits"] for img in rc["images"]] == ref.tolist(), f"{c.name}: RTL logits differ from golden"
    sim_info = rtl["sim"]
    assert sim_info["simulator"] == sim and sim_info["sim_cycles"] > 0
    print(f"[host] {sim} {CI_ARRAY}: {sim_info['sim_cycles']:,} cycles in {sim_info['wall_s']} s "
          f"({sim_info['cycles_per_s']:,} cycles/s)")


NARROW_AND_MIXED = [RunConfig(groups=(1, 1, 1), uniform=1), RunConfig(groups=(1, 2, 4), uniform=None)]


@simulators("verilator")
def test_rtl_backend_counters_equal_model(sim):
    """CI subset: Verilator, width 0.25 and groups 1,2,4, one image."""
    _compare_backends(sim, NARROW_AND_MIXED)


@pytest.mark.slow
@simulators("icarus")
def test_rtl_backend_counters_equal_model_icarus(sim):
    _compare_backends(sim, NARROW_AND_MIXED[:1])


@pytest.mark.slow
@simulators("verilator")
def test_host_cli_on_verilator_equals_model_backend(sim, tmp_path):
    """``sw/host.py --backend verilator`` at 8x8: every layer of the shipped network at every
    width and at groups 1,2,4 has the report fields of the model backend, bit-exact logits."""
    reports = {}
    for backend in ("model", sim):
        out = tmp_path / f"{backend}.json"
        r = subprocess.run([sys.executable, str(REPO / "sw" / "host.py"), "--sweep", "--layer-groups", "1,2,4",
                            "--backend", backend, "--images", "2", "--eval-images", "100", "--json", str(out)],
                           capture_output=True, text=True, timeout=1800, env=dict(os.environ))
        assert r.returncode == 0, f"{backend}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        reports[backend] = json.loads(out.read_text())
    model, rtl = reports["model"], reports[sim]
    assert [c["name"] for c in rtl["configs"]] == ["w1", "w2", "w3", "w4", "g1-2-4"]
    for cm, cr in zip(model["configs"], rtl["configs"]):
        assert cr["outputs_match_golden"] is True and cr["images_run"] == 2
        assert cr["layer_cycles"] == cm["layer_cycles"]
        for rm, rr in zip(cm["layers"] + [cm["total"]], cr["layers"] + [cr["total"]]):
            diff = {k: (rr[k], rm[k]) for k in rm if rr[k] != rm[k]}
            assert not diff, f"{cr['name']} {rr['layer']}: RTL vs model {diff}"
    assert rtl["one_time_load"] == model["one_time_load"]
    print(f"[host] {sim} 8x8 sweep: {rtl['simulation']}")


@simulators("verilator")
def test_runtime_trace_on_rtl(sim, tmp_path):
    """``--trace`` on the RTL (4x4): the manager's choices over a short trace that forces a width
    switch, the width written between frames (no reload); every frame's logits equal the golden
    model's, every counter the model backend's and the counters the trace was charged, and the
    bus cycles per transaction measured there equal sw.frames.BUS_CYCLES."""
    from model import profiles
    from sw import runtime
    from sw.energy import OPPS
    from sw.frames import frame_cost, frame_transactions
    cfg = array_config(CI_ARRAY)
    ex = load_export()
    program = build_program(ex, cfg)
    test = load_split("test")
    classes = ex.heads[ex.groups].out_channels
    acc = ex.meta["accuracy"]
    useful = profiles.useful(ex.groups, len(ex.convs))
    val = {g: acc[profiles.key(g)]["int8_val"] for g in useful}
    tst = {g: acc[profiles.key(g)]["int8_test"] for g in useful}
    narrow = runtime.profile_counters(program, cfg, [(1, 1, 1)], test.images[0], classes)[(1, 1, 1)]
    tight = 1.3 * frame_cost(narrow, (1, 1, 1), OPPS["nominal"], cfg, frame_transactions(program, classes)).latency_us() \
        + 140
    trace = tmp_path / "t.csv"
    trace.write_text("deadline_us\n" + "".join(f"{d}\n" for d in (1e6, tight, tight, tight)))
    doc = runtime.run_trace(ex, program, cfg, str(trace), None, "dvfs", test, val, tst, cache=False)
    try:
        v = runtime.verify_on_rtl(doc, sim, ex, program, cfg, test, 4)
    except SimError as e:
        pytest.fail(str(e), pytrace=False)
    assert v["frames"] == 4 and v["width_switches"] >= 1, v
    assert v["bit_exact"], "\n".join(v["problems"])
    print(f"[runtime] {sim} {CI_ARRAY}: profiles {v['profiles']}, bus cycles {v['bus_cycles']}, {v['simulation']}")
