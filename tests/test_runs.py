"""model.runs (training runs side by side) and model.bncheck's per-profile BatchNorm statistics."""
from __future__ import annotations

import json

import numpy as np


def _report(folder, subnets, seed, acc, seconds):
    folder.mkdir()
    profiles = {k: dict(int8_test=a, int8_val=a - 0.01) for k, a in acc.items()}
    (folder / "report.json").write_text(json.dumps(dict(scheme="incremental", subnets=subnets, seed=seed,
                                                        profiles=profiles, train_seconds=seconds)))
    return str(folder)


def test_runs_table(tmp_path, capsys):
    from model import runs
    a = _report(tmp_path / "a", "uniform", 0, {"1,1": 0.8, "1,2": 0.7}, 100.0)
    b = _report(tmp_path / "b", "sandwich", 1, {"1,1": 0.81, "1,2": 0.79}, 250.0)
    assert runs.main([a, b]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| profile | uniform, seed 0 | sandwich, seed 1 |"
    assert lines[2] == "| **1,1** | 80.00 (79.00) | 81.00 (80.00) |"
    assert lines[3] == "| 1,2 | 70.00 (69.00) | 79.00 (78.00) |"
    assert lines[4] == "| training time (s) | 100 | 250 |"
    assert runs.main([str(tmp_path / "none")]) == 2
    assert "not a model.train report" in capsys.readouterr().err


def test_seeds_table(tmp_path, capsys):
    from model import runs
    a = _report(tmp_path / "a", "sandwich", 0, {"1,1": 0.80, "1,2": 0.70}, 100.0)
    b = _report(tmp_path / "b", "sandwich", 1, {"1,1": 0.82, "1,2": 0.71}, 300.0)
    c = _report(tmp_path / "c", "uniform", 0, {"1,1": 0.85, "1,2": 0.60}, 50.0)
    assert runs.main([a, b, c, "--seeds"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| profile | sandwich (2 seeds) | uniform (1 seeds) |"
    assert lines[2] == "| **1,1** | 81.00 ± 1.00 | 85.00 ± 0.00 |"
    assert lines[3] == "| 1,2 | 70.50 ± 0.50 | 60.00 ± 0.00 |"
    assert lines[4] == "| training time (s) | 200 | 50 |"


def test_reestimated_statistics_are_the_batch_statistics(torch1, tmp_path):
    """After re-estimation, a layer's running mean and (unbiased) variance are those of its conv
    output on the images at that profile, computed here with plain torch ops."""
    torch = torch1
    import torch.nn.functional as F

    from model.bncheck import reestimated
    from model.config import ConvSpec, NetConfig
    from model.net import DynNet, image_to_float
    from model.quantize import INPUT_SHIFT

    torch.manual_seed(0)
    net = DynNet(NetConfig(in_size=12, groups=2, convs=(ConvSpec("c1", 4), ConvSpec("c2", 4)))).eval()
    images = np.random.default_rng(0).integers(0, 256, (64, 1, 12, 12), dtype=np.uint8)
    profile = (1, 2)
    net2 = reestimated(net, profile, images)
    x = image_to_float(torch.from_numpy(images), INPUT_SHIFT)
    y = F.conv2d(x, (net.weights[0] * net.mask(0))[:2], padding=1)
    assert torch.allclose(net2.bns[0].running_mean[:2], y.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(net2.bns[0].running_var[:2], y.var(dim=(0, 2, 3), unbiased=True), rtol=1e-5)
    # the inactive channels keep the original's statistics, and the original is untouched
    assert torch.equal(net2.bns[0].running_mean[2:], net.bns[0].running_mean[2:])
    assert torch.count_nonzero(net.bns[0].running_mean) == 0
