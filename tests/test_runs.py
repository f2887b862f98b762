"""model.runs (training runs side by side) and model.bncheck's per-profile BatchNorm statistics."""
from __future__ import annotations

import json

import numpy as np
import pytest


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


def _full_report(folder, label_seed, acc, seconds, **recipe):
    folder.mkdir()
    profiles = {k: dict(float_test=f, int8_test=i, float_val=f - 0.01, int8_val=i - 0.01) for k, (f, i) in acc.items()}
    (folder / "report.json").write_text(json.dumps(dict(
        scheme="incremental", subnets="sandwich", seed=label_seed, epochs=[4], lr=3e-3, batch=128, **recipe,
        kernels=dict(threads=2), profiles=profiles, train_seconds=seconds)))
    return str(folder)


def test_record_and_its_table(tmp_path, capsys):
    """--record adds runs under a label (a rerun of a label's seed replaces it) and the table is
    each label's mean ± half spread per uniform width, the worst int8 - float, the mean time."""
    from model import runs
    path = tmp_path / "runs.json"
    a = _full_report(tmp_path / "a", 0, {"1,1": (0.80, 0.79), "1,2": (0.5, 0.5), "2,2": (0.90, 0.905)}, 100.4)
    b = _full_report(tmp_path / "b", 1, {"1,1": (0.82, 0.83), "1,2": (0.5, 0.5), "2,2": (0.91, 0.90)}, 300.0)
    c = _full_report(tmp_path / "c", 0, {"1,1": (0.70, 0.70)}, 20.0, flip=True)
    runs.record("new", [a, b], path)
    runs.record("probe", [c], path)
    rows = runs.record("new", [b], path)  # seed 1 again: replaced, not added
    assert [(r["label"], r["seed"]) for r in rows] == [("new", 0), ("probe", 0), ("new", 1)]
    assert rows[0]["profiles"]["1,1"] == [0.80, 0.79, 0.79, 0.78] and rows[0]["train_seconds"] == 100
    assert rows[1]["flip"] is True and rows[0]["threads"] == 2
    lines = runs.record_table(runs.load_record(path)).splitlines()
    assert lines[0] == ("| recipe | scheme | seeds | width 1/2 | width 2/2 | int8 - float (worst) "
                        "| training time (s) | threads |")
    assert lines[2] == "| new | sandwich | 2 | 81.00 ± 2.00 | 90.25 ± 0.25 | -1.00 | 200 | 2 |"
    assert lines[3] == "| probe | sandwich | 1 | 70.00 ± 0.00 | – | +0.00 | 20 | 2 |"
    assert runs.record_table(rows, ["probe"]).splitlines()[2].startswith("| probe |")
    prof = runs.record_profiles_table(rows, "new").splitlines()
    assert prof[0] == "| profile | int8 test (2 seeds) | int8 validation | float test |"
    assert prof[2] == "| **1,1** | 81.00 ± 2.00 | 80.00 ± 2.00 | 81.00 |"
    assert prof[3] == "| 1,2 | 50.00 ± 0.00 | 49.00 ± 0.00 | 50.00 |"
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not a training record"):
        runs.load_record(bad)


def test_shipped_record_holds_the_shipped_export():
    """The record's run of the shipped recipe at the shipped seed is the shipped export: the same
    accuracy of every profile as the export's own metadata (written by the same run)."""
    from model import runs
    from model.export import load_export
    meta = load_export().meta
    rows = [r for r in runs.load_record() if r["label"] == runs.SHIPPED and r["seed"] == meta["seed"]]
    assert len(rows) == 1, f"model/ref/runs.json has no {runs.SHIPPED!r} run of seed {meta['seed']}"
    assert rows[0]["profiles"] == {k: [round(v[f], 4) for f in runs.FIELDS] for k, v in meta["accuracy"].items()}


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
