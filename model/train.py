"""Train the dynamic-width CNN on Fashion-MNIST and export it as int8.

Schemes (same data, seeds and optimiser; ``--epochs`` per stage / network):

* ``incremental`` (chanscale's): stage k = 1..G trains channel group k-1 of every layer (and the
  classifier for width k/G) at width k/G, with groups 0..k-2 frozen, weights and BatchNorm
  statistics both, so every narrower network is bit-identical before and after.
* ``independent`` (baseline): one dense network per width k/G, each trained alone.
* ``joint`` (slimmable-style): one network, every step sums the loss at all G widths, same
  block lower-triangular connectivity.

``--subnets`` chooses what an incremental stage trains: the uniform width only, or every useful
per-layer profile of the stage (model.profiles), one per step (``single-path``) or the widest, the
narrowest and a random one per step with in-place distillation (``sandwich``); ``subnet_plan``.
``--scheme independent --profile 1,2,4`` trains a per-layer profile alone as a dense network.
The CPU kernels are pinned (model.kernels), so a run reproduces bit for bit on another machine.

Examples::

    python -m model.train --scheme incremental --out build/train          # what `make train` runs
    python -m model.train --scheme joint --epochs 4 --out build/joint
    python -m model.train --scheme independent --out build/independent
    python -m model.train --scheme independent --profile 1,2,4 --profile 2,3,3 --out build/individual
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import golden, kernels, profiles
from .cli import OneLineParser
from .config import REFERENCE, NetConfig
from .data import DatasetError, check_images, load_split, train_val_split
from .export import DEFAULT_EXPORT, ExportError, load_export, update_meta
from .net import DynNet, image_to_float
from .outputs import OutputError, check_dir
from .quantize import INPUT_SHIFT, export

SCHEMES = ("incremental", "independent", "joint")
SUBNETS = ("uniform", "single-path", "sandwich")
SUBNETS_DEFAULT = "sandwich"  # the shipped export's (docs/training.md compares them)
# The shipped recipe (docs/training.md, "Recipe", measures each choice).
EPOCHS = [16, 5, 5, 5]
SHIFT = 0
SMOOTHING = 0.0
WEIGHT_DECAY = 0.0
DISTILL = 0.0  # weight of the teacher's soft targets (0: no teacher)
TEMPERATURE = 1.0
SANDWICH_EXTRA = 1  # random profiles per sandwich step besides the widest and the narrowest (US-Nets: 2)


def save_float(path, net: DynNet) -> None:
    """The float network as .npz (state arrays + config JSON); no pickle."""
    arrays = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    arrays["__config__"] = np.frombuffer(net.cfg.to_json().encode(), np.uint8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_float(path) -> DynNet:
    with np.load(path, allow_pickle=False) as z:
        cfg = NetConfig.from_dict(json.loads(z["__config__"].tobytes().decode()))
        net = DynNet(cfg)
        net.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files if k != "__config__"})
    return net.eval()


def _trainable_masks(net: DynNet, stage: int | None) -> dict[str, torch.Tensor]:
    """Per parameter/buffer name, a bool mask of the entries that stage ``stage`` (1-based) may
    change; ``None`` = everything (joint/independent)."""
    masks = {}
    G = net.cfg.groups
    for name, t in list(net.named_parameters()) + list(net.named_buffers()):
        if stage is None or name.startswith("mask"):
            continue
        m = torch.zeros_like(t, dtype=torch.bool)
        if name.startswith("weights.") or name.startswith("bns."):
            gs = t.shape[0] // G
            m[(stage - 1) * gs: stage * gs] = True
        elif name.startswith("head_"):
            if net.cfg.head == "per_width":
                m[...] = int(name.split(".")[1]) == stage - 1
            elif name.startswith("head_w"):
                gs = t.shape[1] // G
                m[:, (stage - 1) * gs: stage * gs] = True
            else:
                m[...] = stage == 1  # the shared bias belongs to the narrowest network
        masks[name] = m
    return masks


def fixed(profiles: list[tuple[int, ...]]):
    """A step plan that trains ``profiles`` on the labels at every step."""
    return lambda rng: (profiles, [])


def subnet_plan(subnets: str, G: int, n: int, t: int, extra: int = SANDWICH_EXTRA):
    """What stage ``t`` trains at each step, as ``plan(rng) -> (on the labels, distilled)``:

    * ``uniform``: (t,..,t) only;
    * ``single-path``: one of the stage's useful profiles, drawn uniformly per step (per step, not
      per epoch: a stage has fewer epochs than the last stage has profiles);
    * ``sandwich``: (t,..,t) on the labels; the narrowest (1,..,1,t) and ``extra`` other profiles
      drawn without replacement, each distilled from (t,..,t)'s output (US-Nets' in-place
      distillation).
    """
    full = (t,) * n
    if subnets == "uniform":
        return fixed([full])
    members = profiles.stage(G, n, t)
    if subnets == "single-path":
        return lambda rng: ([members[rng.integers(len(members))]], [])
    narrow = (1,) * (n - 1) + (t,)
    rest = [p for p in members if p not in (full, narrow)]

    def plan(rng):
        picks = [rest[i] for i in sorted(rng.choice(len(rest), min(extra, len(rest)), replace=False))]
        return [full], ([narrow] if narrow != full else []) + picks
    return plan


class Teacher:
    """A trained network to distil from (``--teacher``). Its outputs on the training images are
    computed once, unless the images are augmented (then once per step, on the augmented batch)."""

    def __init__(self, net: DynNet, images: np.ndarray, augmented: bool):
        self.net = net.eval()
        x = torch.from_numpy(images)
        self.outputs = None if augmented else torch.cat([self._run(image_to_float(x[s:s + 1000], INPUT_SHIFT))
                                                         for s in range(0, len(x), 1000)])

    @torch.no_grad()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, (1,) * len(self.net.cfg.convs))

    def __call__(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits for the training images ``idx``, given as the (augmented) float batch ``x``."""
        return self.outputs[idx] if self.outputs is not None else self._run(x)


def labelled_loss(outs: list[torch.Tensor], y: torch.Tensor, smoothing: float = 0.0,
                  teacher: torch.Tensor | None = None, distill: float = 0.0, temperature: float = 1.0):
    """The mean over ``outs`` (logits) of the cross-entropy to the labels ``y`` or, with the
    ``teacher``'s logits, of (1 - distill) CE + distill T^2 softCE(outs / T, teacher / T)
    (Hinton et al. 2015: T^2 keeps the soft gradients' scale independent of T)."""
    loss = sum(F.cross_entropy(o, y, label_smoothing=smoothing) for o in outs) / len(outs)
    if teacher is None or not distill:
        return loss
    soft = sum(_soft_ce(o / temperature, teacher / temperature) for o in outs) / len(outs)
    return (1 - distill) * loss + distill * temperature ** 2 * soft


def _soft_ce(logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return -(F.softmax(teacher, 1) * F.log_softmax(logits, 1)).sum(1).mean()


def shift_images(x: torch.Tensor, shift: int, rng) -> torch.Tensor:
    """Each image moved by its own random offset of up to ``shift`` pixels along each axis, the
    uncovered border zero (the background of a Fashion-MNIST image)."""
    n, _, h, w = x.shape
    d = torch.from_numpy(rng.integers(-shift, shift + 1, size=(n, 2)))
    xp = F.pad(x, (shift,) * 4)
    rows = torch.arange(h)[None, :] + shift - d[:, :1]
    cols = torch.arange(w)[None, :] + shift - d[:, 1:]
    return xp[torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def train_net(net: DynNet, train, epochs: int, plan, stage: int | None,
              lr: float, batch: int, seed: int, desc: str, shift: int = 0, smoothing: float = 0.0,
              weight_decay: float = 0.0, flip: bool = False, distill: float = 0.0,
              temperature: float = 1.0, teacher: Teacher | None = None) -> None:
    """Adam + one-cycle schedule. ``plan(rng)`` names each step's profiles: the loss is the mean
    cross-entropy over those on the labels plus, for each distilled one, the soft cross-entropy
    to the first labelled profile's (detached) output; with a ``teacher`` and ``distill`` > 0 the
    labelled profiles also learn its outputs (``labelled_loss``). With ``stage`` set, every entry
    outside that stage's group is restored after each step (frozen exactly)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    plan_rng = np.random.default_rng([seed, 1])  # its own stream: the data order is every plan's
    if stage is not None:
        for bn in net.bns:
            gs = bn.frozen.numel() // net.cfg.groups
            bn.frozen[:] = torch.arange(bn.frozen.numel()) < (stage - 1) * gs
    masks = _trainable_masks(net, stage)
    group = None if stage is None else stage - 1  # only its channels carry gradients (DynNet.forward)
    tensors = dict(list(net.named_parameters()) + list(net.named_buffers()))
    frozen = {n: tensors[n].detach().clone() for n in masks}
    params = [p for n, p in net.named_parameters() if n not in masks or masks[n].any()]
    opt = (torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay) if weight_decay
           else torch.optim.Adam(params, lr=lr))
    steps = epochs * (len(train) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
    x_all = torch.from_numpy(train.images)
    y_all = torch.from_numpy(train.labels)
    net.train()
    bar = tqdm(total=steps, desc=desc, unit="step", leave=False, mininterval=2, disable=None)
    for _ in range(epochs):
        perm = torch.from_numpy(rng.permutation(len(train)))
        for s in range(len(train) // batch):
            idx = perm[s * batch:(s + 1) * batch]
            x = image_to_float(x_all[idx], INPUT_SHIFT)
            if flip:
                mirror = torch.from_numpy(rng.random(len(idx)) < 0.5)
                x = torch.where(mirror[:, None, None, None], x.flip(3), x)
            if shift:
                x = shift_images(x, shift, rng)
            y = y_all[idx]
            labelled, distilled = plan(plan_rng)
            outs = [net(x, p, train_group=group) for p in labelled]
            taught = teacher(idx, x) if teacher is not None and distill else None
            loss = labelled_loss(outs, y, smoothing, taught, distill, temperature)
            if distilled:
                widest = outs[0].detach()
                loss = loss + sum(_soft_ce(net(x, p, train_group=group), widest) for p in distilled)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                for n, m in masks.items():
                    tensors[n].copy_(torch.where(m, tensors[n], frozen[n]))
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    net.eval()


@torch.no_grad()
def float_accuracy(net: DynNet, split, groups) -> float:
    net.eval()
    correct = 0
    for s in range(0, len(split), 1000):
        x = image_to_float(torch.from_numpy(split.images[s:s + 1000]), INPUT_SHIFT)
        correct += int((net(x, groups).argmax(1).numpy() == split.labels[s:s + 1000]).sum())
    return correct / len(split)


def run_scheme(args) -> dict:
    cfg = NetConfig.from_dict({**REFERENCE.to_dict(), "head": args.head})
    check_dir(args.out, "--out")
    full = load_split("train", args.data_dir)
    test = load_split("test", args.data_dir)
    for split in (full, test):
        check_images(split, cfg.in_channels, cfg.in_size, "the reference network")
    if args.val_size >= len(full):
        raise ValueError(f"--val-size {args.val_size} leaves no training images (the set has {len(full)})")
    train, val = train_val_split(full, args.val_size, seed=args.seed)
    if args.limit:
        train = train.take(np.arange(min(args.limit, len(train))))
    calib = train.images[:args.calib_images]
    if args.native_kernels:  # after the checks (they use no torch), before any tensor operation
        torch.set_num_threads(args.threads)
    else:
        kernels.pin(args.threads)
    # Everything is written into a scratch folder that only moves into --out when complete.
    final = Path(args.out)
    final.parent.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.partial-"))
    try:
        report = _run(args, cfg, train, val, test, calib, out)
        final.mkdir(exist_ok=True)
        for f in out.iterdir():
            os.replace(f, final / f.name)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return report


def _run(args, cfg, train, val, test, calib, out: Path) -> dict:
    G, n = cfg.groups, len(cfg.convs)
    report = dict(scheme=args.scheme, subnets=args.subnets if args.scheme == "incremental" else None,
                  head=cfg.head, epochs=args.epochs, seed=args.seed, lr=args.lr, batch=args.batch,
                  **_recipe(args), stages=args.stages, train_images=len(train), val_images=len(val),
                  test_images=len(test), kernels=kernels.describe(), profiles={})
    t0 = time.time()
    if args.scheme == "independent":
        _run_independent(args, cfg, train, val, test, calib, out, report)
        return report
    teacher, _ = _teacher(args, cfg, train, val, test, out, report)
    torch.manual_seed(args.seed)
    net = DynNet(cfg)
    if args.scheme == "incremental":
        report["stage_seconds"] = []
        for k in range(1, (args.stages or G) + 1):
            t_stage = time.time()
            train_net(net, train, _epochs(args, k), subnet_plan(args.subnets, G, n, k), k, args.lr, args.batch,
                      args.seed + k, f"stage {k}/{G}", **_recipe(args), teacher=teacher)
            report["stage_seconds"].append(round(time.time() - t_stage, 1))
            print(f"  stage {k}/{G}: float val acc at width {k}/{G} = {float_accuracy(net, val, (k,) * n):.4f} "
                  f"({report['stage_seconds'][-1]:.0f} s)", flush=True)
    else:
        train_net(net, train, _epochs(args, G), fixed([(k,) * n for k in range(1, G + 1)]), None, args.lr,
                  args.batch, args.seed, "joint", **_recipe(args), teacher=teacher)
    report["train_seconds"] = round(time.time() - t0, 1)
    save_float(out / "float.npz", net)
    ex = export(net, calib, out / "export.npz", extra_meta=dict(scheme=args.scheme, subnets=report["subnets"],
                                                                seed=args.seed, validation=_validation(args)))
    done = [p for p in profiles.useful(G, n) if max(p) <= (args.stages or G)]
    for p, acc in zip(done, _accuracies(net, ex, done, val, test)):
        report["profiles"][profiles.key(p)] = acc
    report["export_bytes"] = (out / "export.npz").stat().st_size
    report["param_bytes"] = {profiles.key(p): ex.param_bytes(p) for p in profiles.useful(G, n)}
    # the measured accuracy of every useful profile, in the export itself
    update_meta(out / "export.npz", accuracy=report["profiles"])
    if DEFAULT_EXPORT.is_file():
        same = load_export(out / "export.npz").meta["digest"] == load_export(DEFAULT_EXPORT).meta["digest"]
        report["matches_shipped_export"] = same
        print(f"{Path(args.out) / 'export.npz'} {'reproduces' if same else 'differs from'} the shipped export "
              f"{DEFAULT_EXPORT}{' bit for bit' if same else ': ' + _why_different(args)}")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _recipe(args) -> dict:
    """train_net's recipe arguments, named as the command line's (and the report's) fields."""
    return dict(shift=args.shift, smoothing=args.smoothing, weight_decay=args.weight_decay, flip=args.flip,
                distill=args.distill, temperature=args.temperature)


def _epochs(args, k: int) -> int:
    """Epochs of stage ``k`` (incremental), of a network whose widest layer has ``k`` groups
    (independent: the same budget as the stage that trains that width), or of the joint run."""
    return args.epochs[min(k, len(args.epochs)) - 1]


def _validation(args) -> dict:
    """The held-out split, as model.data.train_val_split draws it (for re-evaluating an export)."""
    return dict(images=args.val_size, seed=args.seed)


def _accuracies(net: DynNet, ex, profile_list, val, test) -> list[dict]:
    """Float and int8 (golden) accuracy on both splits, per profile of ``profile_list``."""
    int8 = {name: golden.accuracies(ex, split.images, split.labels, profile_list)
            for name, split in (("test", test), ("val", val))}
    return [dict(int8_test=int8["test"][p], int8_val=int8["val"][p], float_test=float_accuracy(net, test, p),
                 float_val=float_accuracy(net, val, p)) for p in profile_list]


def _dense(args, cfg, train, p, i: int, teacher: Teacher | None = None) -> tuple[DynNet, float]:
    """Profile ``p`` trained alone as a dense network, the ``i``-th of --scheme independent's
    (seed ``--seed + i + 1``), and its training time in seconds."""
    t0 = time.time()
    torch.manual_seed(args.seed + i + 1)
    net = DynNet(cfg.dense(p))
    train_net(net, train, _epochs(args, max(p)), fixed([(1,) * len(p)]), None, args.lr, args.batch,
              args.seed + i + 1, f"profile {profiles.key(p)}", **_recipe(args), teacher=teacher)
    return net, round(time.time() - t0, 1)


def _teacher(args, cfg, train, val, test, out: Path, report: dict) -> tuple[Teacher | None, DynNet | None]:
    """What ``--distill`` learns from: the network of ``--teacher``, or else the full-width dense
    network trained first in this run, exactly the independent scheme's (same seed and epochs),
    saved as teacher_float.npz. Returns the teacher and, when trained here, its network."""
    if not args.distill:
        return None, None
    t0, n = time.time(), len(cfg.convs)
    if args.teacher:
        net, trained = load_float(args.teacher), None
    else:
        net, _ = _dense(args, cfg, train, (cfg.groups,) * n, cfg.groups - 1)
        save_float(out / "teacher_float.npz", net)
        trained = net
    teacher = Teacher(net, train.images, augmented=args.flip or bool(args.shift))
    report["teacher"] = dict(source=args.teacher or "trained in this run: teacher_float.npz",
                             seconds=round(time.time() - t0, 1), float_test=float_accuracy(net, test, (1,) * n),
                             float_val=float_accuracy(net, val, (1,) * n))
    return teacher, trained


def _run_independent(args, cfg, train, val, test, calib, out: Path, report: dict) -> None:
    """Each profile of ``--profile`` (default: the uniform widths) trained alone as its own dense
    network, exported as export_<profile>.npz (e.g. export_1-2-4.npz). With ``--distill`` every
    profile learns from the teacher; the full-width network trained here as the teacher is
    itself the full width's result."""
    G, n = cfg.groups, len(cfg.convs)
    todo = args.profile or [(k,) * n for k in range(1, G + 1)]
    report["export_bytes"], report["param_bytes"], report["train_seconds"] = {}, {}, {}
    teacher, trained = _teacher(args, cfg, train, val, test, out, report)
    for i, p in enumerate(todo):
        if trained is not None and p == (G,) * n and i == G - 1:
            net, seconds = trained, report["teacher"]["seconds"]
        else:
            net, seconds = _dense(args, cfg, train, p, i, teacher)
        k = profiles.key(p)
        report["train_seconds"][k] = seconds
        name = f"export_{k.replace(',', '-')}.npz"
        save_float(out / name.replace("export", "float"), net)
        ex = export(net, calib, out / name, extra_meta=dict(scheme=args.scheme, seed=args.seed, profile=list(p),
                                                            validation=_validation(args)))
        report["profiles"][k] = _accuracies(net, ex, [(1,) * n], val, test)[0]
        report["export_bytes"][k] = (out / name).stat().st_size
        report["param_bytes"][k] = ex.param_bytes((1,) * n)
    (out / "report.json").write_text(json.dumps(report, indent=2))


def _why_different(args) -> str:
    """Why a run's export can differ from the shipped one, as far as the run can tell."""
    defaults = parser().parse_args(["--out", "x"])
    changed = [f"--{k.replace('_', '-')}" for k in ("scheme", "head", "epochs", "lr", "batch", "seed", *_recipe(args),
                                                    "val_size", "calib_images", "limit", "native_kernels",
                                                    "threads", "stages", "teacher")
               if getattr(args, k) != getattr(defaults, k)]
    if args.subnets not in (None, SUBNETS_DEFAULT):
        changed.append("--subnets")
    if args.data_dir is not None:
        changed.append("--data-dir")
    if changed:
        return f"this run's {', '.join(changed)} differ from `make train`'s"
    k = kernels.describe()
    return (f"same arguments, data and pinned kernels as `make train`: compare this run's torch {k['torch']} and "
            f"numpy {k['numpy']} with the versions docs/training.md (Reproducing) names")


def _check_teacher(ap, path: str) -> None:
    """Before any tensor exists (model.kernels.pin comes first): the file's network shape only."""
    try:
        with np.load(path, allow_pickle=False) as z:
            t = NetConfig.from_dict(json.loads(z["__config__"].tobytes().decode()))
    except (OSError, ValueError, KeyError) as e:
        ap.error(f"--teacher {path}: not a network that model.train saved (float*.npz): {e}")
    want = (REFERENCE.in_channels, REFERENCE.in_size, REFERENCE.num_classes)
    if (t.in_channels, t.in_size, t.num_classes) != want:
        ap.error(f"--teacher {path}: its input and classes {(t.in_channels, t.in_size, t.num_classes)} are not "
                 f"the reference network's {want}")


def _epoch_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not N or N,N,.. (epochs per stage)") from None


def parser() -> OneLineParser:
    ap = OneLineParser(prog="python -m model.train", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scheme", choices=SCHEMES, default="incremental")
    ap.add_argument("--subnets", choices=SUBNETS, default=None,
                    help=f"incremental: what each stage trains (model.train.subnet_plan; default {SUBNETS_DEFAULT})")
    ap.add_argument("--profile", action="append", default=[], metavar="G1,G2,..",
                    help="independent: a per-layer profile to train alone as a dense network (repeatable; "
                         "default: the uniform widths)")
    ap.add_argument("--head", choices=("per_width", "shared"), default="per_width",
                    help="classifier: one per width (default) or one shared, sliced by width")
    ap.add_argument("--epochs", type=_epoch_list, default=EPOCHS, metavar="N[,N..]",
                    help="epochs per stage (incremental; one number, or one per stage), per network (independent: "
                         "the width's stage's) or in all (joint: the last); default " + ",".join(map(str, EPOCHS)))
    ap.add_argument("--shift", type=int, default=SHIFT, help="random translation of each image by up to N pixels")
    ap.add_argument("--smoothing", type=float, default=SMOOTHING, help="label smoothing of the cross-entropy")
    ap.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY, help="decoupled weight decay (AdamW)")
    ap.add_argument("--flip", action="store_true",
                    help="random horizontal flips (off in the shipped recipe: Fashion-MNIST's shoes all face one way)")
    ap.add_argument("--distill", type=float, default=DISTILL,
                    help="weight in [0, 1) of a teacher's soft targets in every labelled loss (0: no teacher)")
    ap.add_argument("--temperature", type=float, default=TEMPERATURE, help="softmax temperature of --distill")
    ap.add_argument("--teacher", default=None, metavar="FLOAT.npz",
                    help="the network to distil from (a float*.npz that model.train wrote; default: the full-width "
                         "dense network, trained first in the run)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-size", type=int, default=5000, help="training images held out for validation")
    ap.add_argument("--calib-images", type=int, default=1000, help="training images for activation scales")
    ap.add_argument("--limit", type=int, default=0, help="train on the first N training images only (smoke runs)")
    ap.add_argument("--native-kernels", action="store_true",
                    help="PyTorch's fastest kernels for this processor and --threads threads: faster, but another "
                         "processor trains a slightly different network (default: pinned, on --threads threads; "
                         "model/kernels.py)")
    ap.add_argument("--threads", type=int, default=kernels.THREADS,
                    help=f"CPU threads (default {kernels.THREADS}; the pinned kernels' bits depend on it)")
    ap.add_argument("--stages", type=int, default=None, metavar="K",
                    help="incremental: train stages 1..K only (a probe of the narrow widths; profiles above K "
                         "are not reported)")
    ap.add_argument("--data-dir", default=None, help="folder with the IDX files (default: Fashion-MNIST)")
    ap.add_argument("--out", required=True, help="output folder (export.npz, float.npz, report.json)")
    ap.add_argument("--expect-shipped", action="store_true",
                    help="exit 1 when the export differs from the shipped one (what `make train` checks)")
    ap.add_argument("--debug", action="store_true", help="on a failure, print the traceback too")
    return ap


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if min(*args.epochs, args.batch, args.threads, args.calib_images, args.val_size) < 1 \
            or not 0 < args.lr < math.inf or args.limit < 0 or args.shift < 0 \
            or not 0 <= args.smoothing < 1 or not 0 <= args.weight_decay < math.inf \
            or not 0 <= args.distill < 1 or not 0 < args.temperature < math.inf:
        ap.error("--epochs, --batch, --threads, --calib-images and --val-size must be >= 1, "
                 "--limit and --shift >= 0, --lr and --temperature finite numbers > 0, --smoothing and "
                 "--distill in [0, 1) and --weight-decay >= 0")
    if len(args.epochs) not in (1, REFERENCE.groups):
        ap.error(f"--epochs takes one number or one per stage ({REFERENCE.groups}), got {len(args.epochs)}")
    if args.stages is not None and not (args.scheme == "incremental" and 1 <= args.stages <= REFERENCE.groups):
        ap.error(f"--stages goes with --scheme incremental and takes 1..{REFERENCE.groups}")
    if args.profile and args.scheme != "independent":
        ap.error("--profile trains profiles alone: it goes with --scheme independent")
    if args.subnets and args.scheme != "incremental":
        ap.error("--subnets chooses what incremental stages train: it goes with --scheme incremental")
    if args.scheme == "incremental":
        args.subnets = args.subnets or SUBNETS_DEFAULT
    if args.teacher is not None:
        if not args.distill:
            ap.error("--teacher is what --distill learns from: give --distill a weight > 0")
        _check_teacher(ap, args.teacher)
    try:
        args.profile = [profiles.parse(t, REFERENCE.groups, len(REFERENCE.convs), "--profile") for t in args.profile]
    except profiles.ProfileError as e:
        ap.error(str(e))
    try:
        report = run_scheme(args)
    except (DatasetError, ExportError, OutputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a failure during training: one line (its traceback with --debug)
        if args.debug:
            raise
        print(f"error: {type(e).__name__}: {e} (run again with --debug for the traceback)", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    if args.expect_shipped and not report.get("matches_shipped_export"):
        print(f"error: {Path(args.out) / 'export.npz'} does not reproduce the shipped export {DEFAULT_EXPORT}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
