"""Training invariants (incremental stages keep narrower networks bit-identical) and the shipped
reference network (fake-quant vs golden agreement, recorded accuracy)."""
from __future__ import annotations

import numpy as np
import pytest

from model import golden

SEED = 2024
N_TRAIN, N_TEST, N_CALIB = 512, 64, 256
N_AGREE = 1000
WIDTHS = (0.25, 0.5, 0.75, 1)


def _tiny28(head):
    from model.config import ConvSpec, NetConfig
    return NetConfig(in_size=28, groups=4, head=head, convs=(ConvSpec("c1", 8), ConvSpec("c2", 8)))


def _group0_float(net, head):
    """Every float entry that belongs to channel group 0 (and the width-1/G classifier)."""
    G = net.cfg.groups
    out = {}
    for i, spec in enumerate(net.cfg.convs):
        gs = spec.out_channels // G
        out[f"weights.{i}"] = net.weights[i].detach()[:gs].clone()
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"bns.{i}.{name}"] = getattr(net.bns[i], name).detach()[:gs].clone()
    gs_last = net.cfg.convs[-1].out_channels // G
    if head == "per_width":
        out["head_w.0"] = net.head_w[0].detach().clone()
        out["head_b.0"] = net.head_b[0].detach().clone()
    else:
        out["head_w.0[:, :gs]"] = net.head_w[0].detach()[:, :gs_last].clone()
        out["head_b.0"] = net.head_b[0].detach().clone()
    return out


@pytest.mark.parametrize("head", ["per_width", "shared"])
def test_stage2_keeps_width1_bit_identical(head, torch1, fmnist_train, fmnist_test, tmp_path):
    torch = torch1
    from model.net import DynNet
    from model.quantize import export
    from model.train import train_net

    train = fmnist_train.take(np.arange(N_TRAIN))
    test_images = fmnist_test.images[:N_TEST]
    calib = train.images[:N_CALIB]
    cfg = _tiny28(head)
    n = len(cfg.convs)
    torch.manual_seed(SEED)
    net = DynNet(cfg)

    train_net(net, train, epochs=2, widths=[(1,) * n], stage=1, lr=3e-3, batch=64, seed=SEED + 1, desc="stage 1")
    ex1 = export(net, calib, tmp_path / "stage1.npz")
    before = {w: golden.run(ex1, test_images, width=w) for w in (0.25, 0.5)}
    float_before = _group0_float(net, head)
    w_group1_before = net.weights[0].detach()[2:4].clone()

    train_net(net, train, epochs=2, widths=[(2,) * n], stage=2, lr=3e-3, batch=64, seed=SEED + 2, desc="stage 2")
    ex2 = export(net, calib, tmp_path / "stage2.npz")
    after = {w: golden.run(ex2, test_images, width=w) for w in (0.25, 0.5)}
    float_after = _group0_float(net, head)

    # Float: group 0 (weights, BatchNorm affine and running statistics, its classifier) frozen.
    for k, v in float_before.items():
        assert torch.equal(v, float_after[k]), f"{head}: {k} of group 0 changed in stage 2 (seed {SEED})"
    assert not torch.equal(w_group1_before, net.weights[0].detach()[2:4]), f"stage 2 trained nothing (seed {SEED})"

    # Integer: the width-1/G convolutions compute exactly what they computed before stage 2.
    for i in range(n):
        assert np.array_equal(before[0.25].acts[i], after[0.25].acts[i]), \
            f"{head}: conv {i} at width 1/4 changed (seed {SEED})"
        gs = cfg.convs[i].out_channels // cfg.groups
        for f in ("weight", "bias", "M", "S"):
            a1, a2 = getattr(ex1.convs[i], f)[:gs], getattr(ex2.convs[i], f)[:gs]
            assert np.array_equal(a1, a2), f"{head}: {cfg.convs[i].name}.{f} of group 0 changed (seed {SEED})"
    if head == "per_width":
        assert np.array_equal(before[0.25].logits, after[0.25].logits), \
            f"per_width: width-1/4 logits changed in stage 2 (seed {SEED})"
        for f in ("weight", "bias", "M", "S"):
            assert np.array_equal(getattr(ex1.classifier(1), f), getattr(ex2.classifier(1), f)), f
    # Width 2/4 learned something.
    assert not np.array_equal(before[0.5].logits, after[0.5].logits), f"{head}: width 2/4 unchanged (seed {SEED})"
    acc_after = float((after[0.5].predictions == fmnist_test.labels[:N_TEST]).mean())
    print(f"{head}: width-2/4 int8 accuracy {acc_after}")
    assert acc_after > 0.3, f"{head}: width-2/4 int8 accuracy {acc_after} after 2 stages (seed {SEED})"


# --------------------------------------------------------------------------------------------
# the shipped reference network


@pytest.fixture(scope="module")
def ref_golden(ref_export, fmnist_test):
    """Golden predictions of the shipped export on the first N_AGREE test images, per width."""
    images = fmnist_test.images[:N_AGREE]
    return {w: golden.run(ref_export, images, width=w, keep_acts=False).predictions for w in WIDTHS}


def test_fake_quant_agrees_with_golden(ref_paths, ref_export, ref_golden, fmnist_test, torch1):
    from model.quantize import FakeQuant
    from model.train import load_float

    net = load_float(ref_paths[0])
    fq = FakeQuant(net, ref_export)
    n = len(ref_export.convs)
    images = fmnist_test.images[:N_AGREE]
    agreement = {}
    for w in WIDTHS:
        k = golden.width_groups(w, ref_export.groups)
        fq_pred = fq(images, (k,) * n).argmax(1).numpy()
        agreement[w] = float((fq_pred == ref_golden[w]).mean())
    print(f"fake-quant vs golden top-1 agreement on {N_AGREE} test images: "
          + ", ".join(f"width {w}: {a:.4f}" for w, a in agreement.items()))
    assert all(a >= 0.995 for a in agreement.values()), f"agreement below 0.995: {agreement}"


def test_recorded_accuracy_matches_golden(ref_export, ref_golden, fmnist_test):
    acc = ref_export.meta.get("accuracy")
    assert acc is not None, "the shipped export records no accuracy"
    labels = fmnist_test.labels[:N_AGREE]
    measured = {}
    for w in WIDTHS:
        key = f"{w:g}"
        assert key in acc and "int8_test" in acc[key], f"no int8_test accuracy for width {key}: {acc}"
        measured[key] = float((ref_golden[w] == labels).mean())
        assert abs(measured[key] - acc[key]["int8_test"]) <= 0.03, \
            f"width {key}: golden {measured[key]:.4f} on {N_AGREE} images vs recorded {acc[key]['int8_test']}"
    print(f"golden accuracy on the first {N_AGREE} test images: {measured}")
    # Wider networks are not worse than the narrowest one (the point of adding groups).
    assert acc["1"]["int8_test"] >= acc["0.25"]["int8_test"], acc
