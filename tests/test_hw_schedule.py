"""The schedule and memory layouts, checked with a NumPy memory-level emulator against golden."""
import numpy as np
import pytest

from hw.params import ArrayConfig
from hw.program import act_words, build_program, image_bytes
from hw.schedule import plan_run
from model import golden
from model.data import load_split
from model.export import load_export

from hw_emulator import emulate


@pytest.fixture(scope="module")
def export():
    return load_export()


@pytest.fixture(scope="module")
def images():
    return load_split("test").images[:2]


@pytest.mark.parametrize("n", [4, 8, 16])
@pytest.mark.parametrize("groups", [(1, 1, 1), (4, 4, 4), (1, 2, 4), (3, 2, 1)])
def test_emulated_schedule_matches_golden(export, images, n, groups):
    cfg = ArrayConfig(rows=n, cols=n, wgt_depth=65536 // n, act_depth=8192 // n)
    prog = build_program(export, cfg)
    ref = golden.run(export, images[:1], groups=groups)
    snaps, logits = emulate(prog, image_bytes(prog, images[0]), prog.chan(groups))
    for i, act in enumerate(ref.acts):
        words = act_words(act[0], n)
        got = snaps[i][:len(words)]
        assert np.array_equal(got, words), f"layer {i} differs (n={n}, groups={groups})"
    classes = ref.logits.shape[1]
    assert np.array_equal(logits[:classes], ref.logits[0]), f"logits differ (n={n}, groups={groups})"


def test_uniform_width_register_equals_per_layer(export):
    cfg = ArrayConfig()
    prog = build_program(export, cfg)
    for k in range(1, 5):
        a = plan_run(prog.descs, prog.chan((k,) * 3), cfg, 0, prog.num_layers).counters
        b = plan_run(prog.descs, [(0, 0)] * cfg.n_desc, cfg, 0, prog.num_layers, width=k).counters
        assert a == b
