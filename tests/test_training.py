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
    from model.train import fixed, train_net

    train = fmnist_train.take(np.arange(N_TRAIN))
    test_images = fmnist_test.images[:N_TEST]
    calib = train.images[:N_CALIB]
    cfg = _tiny28(head)
    n = len(cfg.convs)
    torch.manual_seed(SEED)
    net = DynNet(cfg)

    train_net(net, train, epochs=2, plan=fixed([(1,) * n]), stage=1, lr=3e-3, batch=64, seed=SEED + 1, desc="stage 1")
    ex1 = export(net, calib, tmp_path / "stage1.npz")
    before = {w: golden.run(ex1, test_images, width=w) for w in (0.25, 0.5)}
    float_before = _group0_float(net, head)
    w_group1_before = net.weights[0].detach()[2:4].clone()

    train_net(net, train, epochs=2, plan=fixed([(2,) * n]), stage=2, lr=3e-3, batch=64, seed=SEED + 2, desc="stage 2")
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


def test_recorded_accuracy_matches_golden(ref_export, fmnist_train, fmnist_test):
    """The export records every useful profile's int8 accuracy; for the uniform widths and one
    non-uniform profile it equals the golden model's on the whole test set and validation split."""
    from model import profiles
    from model.data import train_val_split

    acc = ref_export.meta.get("accuracy")
    G, n = ref_export.groups, len(ref_export.convs)
    assert set(acc) == {profiles.key(p) for p in profiles.useful(G, n)}, sorted(acc)
    v = ref_export.meta["validation"]
    val = train_val_split(fmnist_train, v["images"], v["seed"])[1]
    for p in [(k,) * n for k in range(1, G + 1)] + [(1, 2, 4)]:
        rec = acc[profiles.key(p)]
        assert rec["int8_test"] == golden.accuracy(ref_export, fmnist_test.images, fmnist_test.labels, groups=p), p
        assert rec["int8_val"] == golden.accuracy(ref_export, val.images, val.labels, groups=p), p


# --------------------------------------------------------------------------------------------
# non-uniform profiles inside the incremental freeze


@pytest.mark.parametrize("subnets,distill", [("single-path", 0.0), ("sandwich", 0.0), ("sandwich", 0.5)])
def test_profile_stages_keep_every_earlier_profile_bit_identical(subnets, distill, torch1, fmnist_train, fmnist_test,
                                                                 tmp_path):
    """Three stages of per-profile training (G = 3, three convolutions): after each later stage,
    the int8 logits of every useful profile of every earlier stage are unchanged, and the profiles
    of the stage just trained changed; also when every stage distils from a (dense) teacher."""
    torch = torch1
    from model import profiles
    from model.config import ConvSpec, NetConfig
    from model.net import DynNet
    from model.quantize import export
    from model.train import Teacher, subnet_plan, train_net

    train = fmnist_train.take(np.arange(N_TRAIN))
    images = fmnist_test.images[:N_TEST]
    calib = train.images[:N_CALIB]
    cfg = NetConfig(in_size=28, groups=3, convs=(ConvSpec("c1", 6), ConvSpec("c2", 6), ConvSpec("c3", 6)))
    G, n = cfg.groups, len(cfg.convs)
    torch.manual_seed(SEED)
    teacher = Teacher(DynNet(cfg.dense((G,) * n)), train.images, augmented=False) if distill else None
    net = DynNet(cfg)
    seen, before = {}, {}
    for t in range(1, G + 1):
        train_net(net, train, epochs=1, plan=subnet_plan(subnets, G, n, t), stage=t, lr=3e-3, batch=64,
                  seed=SEED + t, desc=f"stage {t}", distill=distill, temperature=2.0, teacher=teacher)
        ex = export(net, calib, tmp_path / f"stage{t}.npz")
        now = {p: golden.run(ex, images, groups=p, keep_acts=False).logits for p in profiles.useful(G, n)}
        for p, logits in seen.items():
            assert np.array_equal(logits, now[p]), f"{subnets}: profile {p} changed in stage {t} (seed {SEED})"
        if t > 1:
            assert all(not np.array_equal(now[p], before[p]) for p in profiles.stage(G, n, t)), \
                f"{subnets}: stage {t} left one of its profiles unchanged (seed {SEED})"
        seen.update({p: now[p] for p in profiles.stage(G, n, t)})
        before = now


def test_sandwich_plan_draws_within_the_stage():
    """Each sandwich step: the widest on the labels; the narrowest and distinct random members of
    the stage distilled. Single-path draws one member, and over many steps every member."""
    from model import profiles
    from model.train import SANDWICH_EXTRA, subnet_plan

    rng = np.random.default_rng(0)
    for t in range(1, 5):
        members = profiles.stage(4, 3, t)
        plan = subnet_plan("sandwich", 4, 3, t)
        for _ in range(50):
            labelled, distilled = plan(rng)
            assert labelled == [(t,) * 3]
            assert len(set(distilled)) == len(distilled) == min(len(members) - 1, 1 + SANDWICH_EXTRA)
            assert set(distilled) <= set(members) - {(t,) * 3}
            if t > 1:
                assert distilled[0] == (1, 1, t)
        single = subnet_plan("single-path", 4, 3, t)
        drawn = {single(rng)[0][0] for _ in range(400)}
        assert drawn == set(members)


def test_trained_group_forward_equals_the_plain_one(torch1):
    """DynNet.forward(train_group=t-1), which computes the frozen groups without autograd, gives
    every profile of stage t the same logits, BatchNorm statistics and trained-group gradients
    as the plain forward (one tensor per layer, autograd everywhere)."""
    torch = torch1
    import torch.nn.functional as F

    from model import profiles
    from model.config import REFERENCE
    from model.net import DynNet
    torch.manual_seed(SEED)
    net = DynNet(REFERENCE).train()
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    G, n = REFERENCE.groups, len(REFERENCE.convs)

    def run(p, group):
        start = {k: v.clone() for k, v in net.state_dict().items()}
        net.zero_grad()
        logits = net(x, p, train_group=group)
        F.cross_entropy(logits, y).backward()
        grads = {k: q.grad.clone() for k, q in net.named_parameters() if q.grad is not None}
        state = {k: v.clone() for k, v in net.state_dict().items()}
        net.load_state_dict(start)
        return logits.detach(), grads, state

    for t in range(1, G + 1):
        for bn in net.bns:
            gs = bn.frozen.numel() // G
            bn.frozen[:] = torch.arange(bn.frozen.numel()) < (t - 1) * gs
        for p in profiles.stage(G, n, t):
            plain, split = run(p, None), run(p, t - 1)
            assert torch.equal(plain[0], split[0]), (t, p)
            assert all(torch.equal(plain[2][k], split[2][k]) for k in plain[2]), (t, p)
            for name, g in plain[1].items():
                s = split[1].get(name, torch.zeros_like(g))  # no gradient: the group is not active there
                if name.startswith(("weights.", "bns.")):
                    gs = g.shape[0] // G
                    g, s = g[(t - 1) * gs:t * gs], s[(t - 1) * gs:t * gs]
                elif int(name.split(".")[1]) != t - 1:
                    continue
                assert torch.equal(g, s), (t, p, name)


def test_shift_images_moves_each_image_by_its_offset(torch1):
    torch = torch1
    from model.train import shift_images
    x = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(2, 1, 5, 6) + 1
    rng = np.random.default_rng(3)
    d = np.random.default_rng(3).integers(-2, 3, size=(2, 2))
    out = shift_images(x, 2, rng).numpy()
    for i, (dy, dx) in enumerate(d):
        want = np.zeros((5, 6), np.float32)
        src = x[i, 0].numpy()
        for r in range(5):
            for c in range(6):
                if 0 <= r - dy < 5 and 0 <= c - dx < 6:
                    want[r, c] = src[r - dy, c - dx]
        assert np.array_equal(out[i, 0], want), (i, dy, dx)


def test_labelled_loss_is_hintons_distillation(torch1):
    """labelled_loss against the formula written out in NumPy: the mean over the outputs of
    (1 - a) CE(labels) + a T^2 softCE(softmax(teacher / T), outputs / T); plain CE at a = 0."""
    torch = torch1
    from model.train import labelled_loss
    g = torch.Generator().manual_seed(SEED)
    outs = [torch.randn(6, 10, generator=g, dtype=torch.float64) for _ in range(2)]
    teacher = torch.randn(6, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (6,), generator=g)
    a, T = 0.3, 2.5

    def log_softmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    def ce(o):
        return -log_softmax(o)[np.arange(6), y.numpy()].mean()

    def soft(o):
        return -(np.exp(log_softmax(teacher.numpy() / T)) * log_softmax(o / T)).sum(1).mean()

    want = np.mean([(1 - a) * ce(o.numpy()) + a * T * T * soft(o.numpy()) for o in outs])
    assert labelled_loss(outs, y, 0.0, teacher, a, T).item() == pytest.approx(want, rel=1e-12)
    assert labelled_loss(outs, y, 0.0, teacher, 0.0, T).item() == pytest.approx(np.mean([ce(o.numpy()) for o in outs]),
                                                                                 rel=1e-12)


def test_teacher_outputs_computed_once_equal_those_per_step(torch1, fmnist_train):
    """The teacher's outputs over the training set (un-augmented images), indexed by a batch,
    equal its outputs on that batch computed per step (the augmented path)."""
    torch = torch1
    from model.net import DynNet, image_to_float
    from model.quantize import INPUT_SHIFT
    from model.train import Teacher
    cfg = _tiny28("shared")
    torch.manual_seed(SEED)
    net = DynNet(cfg.dense((cfg.groups,) * len(cfg.convs)))
    images = fmnist_train.images[:1300]
    once, per_step = Teacher(net, images, augmented=False), Teacher(net, images, augmented=True)
    assert per_step.outputs is None and once.outputs.shape == (1300, 10)
    idx = torch.tensor([5, 17, 1299, 0, 1000])
    x = image_to_float(torch.from_numpy(images[idx.numpy()]), INPUT_SHIFT)
    assert torch.allclose(once(idx, x), per_step(idx, x), rtol=0, atol=1e-5)
