"""The schedule, the memory layouts and the model device (sw/model_device.py), driven by the
host driver exactly as the RTL is, against the golden model."""
import asyncio

import numpy as np
import pytest

from hw.contract.params import ArrayConfig
from hw.contract.program import act_words, build_program, image_bytes
from hw.contract.schedule import plan_run
from model import golden
from model.data import load_split
from model.export import load_export
from sw.driver import Driver
from sw.model_device import ModelBus


@pytest.fixture(scope="module")
def export():
    return load_export()


@pytest.fixture(scope="module")
def images():
    return load_split("test").images[:2]


async def _run_layers(drv, prog, image, groups):
    """Run the network one descriptor at a time, reading every conv layer's output."""
    await drv.load_program(prog)
    await drv.load_image(image_bytes(prog, image))
    await drv.set_groups(prog, groups)
    outs = []
    for j in range(prog.num_layers):
        st = await drv.run(j, 1)
        assert not st["error"]
        if j < prog.n_convs:
            d = prog.descs[j]
            words = await drv.read_window("ACT_A" if d["dst"] == 1 else "ACT_B", drv.cfg.act_depth)
            outs.append(words.view(np.int8))
    return outs, await drv.read_logits(10)


@pytest.mark.parametrize("n", [4, 8, 16])
@pytest.mark.parametrize("groups", [(1, 1, 1), (4, 4, 4), (1, 2, 4), (3, 2, 1)])
def test_model_device_matches_golden(export, images, n, groups):
    cfg = ArrayConfig(rows=n, cols=n, wgt_depth=65536 // n, act_depth=8192 // n)
    prog = build_program(export, cfg)
    ref = golden.run(export, images[:1], groups=groups)
    outs, logits = asyncio.run(_run_layers(Driver(ModelBus(cfg), cfg), prog, images[0], groups))
    for i, act in enumerate(ref.acts):
        words = act_words(act[0], n)
        assert np.array_equal(outs[i][:len(words)], words), f"layer {i} differs (n={n}, groups={groups})"
    assert np.array_equal(logits, ref.logits[0]), f"logits differ (n={n}, groups={groups})"


def test_uniform_width_register_equals_per_layer(export):
    cfg = ArrayConfig()
    prog = build_program(export, cfg)
    for k in range(1, 5):
        a = plan_run(prog.descs, prog.chan((k,) * 3), cfg, 0, prog.num_layers).counters
        b = plan_run(prog.descs, [(0, 0)] * cfg.n_desc, cfg, 0, prog.num_layers, width=k).counters
        assert a == b
