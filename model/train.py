"""Train the dynamic-width CNN on Fashion-MNIST and export it as int8.

Schemes (same data, seeds and optimiser; ``--epochs`` per stage / network):

* ``incremental`` (chanscale's): stage k = 1..G trains channel group k-1 of every layer (and the
  classifier for width k/G) at width k/G, with groups 0..k-2 frozen, weights and BatchNorm
  statistics both, so every narrower network is bit-identical before and after.
* ``independent`` (baseline): one dense network per width k/G, each trained alone.
* ``joint`` (slimmable-style): one network, every step sums the loss at all G widths, same
  block lower-triangular connectivity.

Examples::

    python -m model.train --scheme incremental --out build/train          # what `make train` runs
    python -m model.train --scheme joint --epochs 4 --out build/joint
    python -m model.train --scheme independent --out build/independent
"""
from __future__ import annotations

import argparse
import json
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

from . import golden
from .config import REFERENCE, NetConfig
from .data import DatasetError, check_images, load_split, train_val_split
from .export import DEFAULT_EXPORT, ExportError, load_export, update_meta
from .net import DynNet, image_to_float
from .outputs import OutputError, check_dir
from .quantize import INPUT_SHIFT, export

SCHEMES = ("incremental", "independent", "joint")


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


def train_net(net: DynNet, train, epochs: int, widths: list[tuple[int, ...]], stage: int | None,
              lr: float, batch: int, seed: int, desc: str) -> None:
    """Adam + cosine decay; the loss is the mean over ``widths``. With ``stage`` set, every entry
    outside that stage's group is restored after each step (frozen exactly)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if stage is not None:
        for bn in net.bns:
            gs = bn.frozen.numel() // net.cfg.groups
            bn.frozen[:] = torch.arange(bn.frozen.numel()) < (stage - 1) * gs
    masks = _trainable_masks(net, stage)
    tensors = dict(list(net.named_parameters()) + list(net.named_buffers()))
    frozen = {n: tensors[n].detach().clone() for n in masks}
    params = [p for n, p in net.named_parameters() if n not in masks or masks[n].any()]
    opt = torch.optim.Adam(params, lr=lr)
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
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            y = y_all[idx]
            loss = sum(F.cross_entropy(net(x, w), y) for w in widths) / len(widths)
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
    report = dict(scheme=args.scheme, head=cfg.head, epochs=args.epochs, seed=args.seed, lr=args.lr,
                  batch=args.batch, train_images=len(train), val_images=len(val), test_images=len(test),
                  threads=torch.get_num_threads(), widths={})
    t0 = time.time()
    nets: dict[int, DynNet] = {}
    if args.scheme == "incremental":
        torch.manual_seed(args.seed)
        net = DynNet(cfg)
        for k in range(1, G + 1):
            train_net(net, train, args.epochs, [(k,) * n], k, args.lr, args.batch, args.seed + k,
                      f"stage {k}/{G}")
            print(f"  stage {k}/{G}: float val acc at width {k}/{G} = {float_accuracy(net, val, (k,) * n):.4f}",
                  flush=True)
        nets = {k: net for k in range(1, G + 1)}
    elif args.scheme == "joint":
        torch.manual_seed(args.seed)
        net = DynNet(cfg)
        train_net(net, train, args.epochs, [(k,) * n for k in range(1, G + 1)], None, args.lr,
                  args.batch, args.seed, "joint")
        nets = {k: net for k in range(1, G + 1)}
    else:
        for k in range(1, G + 1):
            torch.manual_seed(args.seed + k)
            nets[k] = DynNet(cfg.scaled(k))
            train_net(nets[k], train, args.epochs, [(1,) * n], None, args.lr, args.batch, args.seed + k,
                      f"width {k}/{G}")
    report["train_seconds"] = round(time.time() - t0, 1)

    exports = {}
    for k in sorted(set(nets), reverse=True):
        net = nets[k]
        shared = args.scheme != "independent"
        if shared and exports:
            exports[k] = exports[G]
            continue
        name = "export.npz" if shared else f"export_w{k}.npz"
        save_float(out / name.replace("export", "float"), net)
        exports[k] = export(net, calib, out / name, extra_meta=dict(scheme=args.scheme, seed=args.seed))
    for k in range(1, G + 1):
        grp = (k,) * n if args.scheme != "independent" else (1,) * n
        ex = exports[k]
        report["widths"][f"{k / G:g}"] = dict(
            float_val=float_accuracy(nets[k], val, grp), float_test=float_accuracy(nets[k], test, grp),
            int8_val=golden.accuracy(ex, val.images, val.labels, groups=grp),
            int8_test=golden.accuracy(ex, test.images, test.labels, groups=grp))
    report["export_bytes"] = {f"{k / G:g}": (out / ("export.npz" if args.scheme != "independent"
                                                    else f"export_w{k}.npz")).stat().st_size
                              for k in range(1, G + 1)}
    report["param_bytes"] = {f"{k / G:g}": exports[k].param_bytes((k,) * n if args.scheme != "independent"
                                                                  else (1,) * n) for k in range(1, G + 1)}
    if args.scheme != "independent":  # record the measured accuracy in the export itself
        update_meta(out / "export.npz", accuracy={
            w: {f: r[f] for f in ("int8_test", "float_test", "int8_val")} for w, r in report["widths"].items()})
    if args.scheme != "independent" and DEFAULT_EXPORT.is_file():
        same = load_export(out / "export.npz").meta["digest"] == load_export(DEFAULT_EXPORT).meta["digest"]
        report["matches_shipped_export"] = same
        print(f"{Path(args.out) / 'export.npz'} {'reproduces' if same else 'differs from'} the shipped export "
              f"{DEFAULT_EXPORT}{' bit for bit' if same else ': ' + _why_different(args)}")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _why_different(args) -> str:
    """Why a run's export can differ from the shipped one, as far as the run can tell."""
    defaults = parser().parse_args(["--out", "x"])
    changed = [f"--{k.replace('_', '-')}" for k in ("scheme", "head", "epochs", "lr", "batch", "seed", "val_size",
                                                    "calib_images", "limit", "threads")
               if getattr(args, k) != getattr(defaults, k)]
    if args.data_dir is not None:
        changed.append("--data-dir")
    if changed:
        return f"this run's {', '.join(changed)} differ from `make train`'s"
    return ("same arguments and data as `make train`: the float computation differs from the run that made it "
            "(PyTorch's kernels and their summation order; docs/training.md, Reproducing)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m model.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scheme", choices=SCHEMES, default="incremental")
    ap.add_argument("--head", choices=("per_width", "shared"), default="per_width",
                    help="classifier: one per width (default) or one shared, sliced by width")
    ap.add_argument("--epochs", type=int, default=4, help="epochs per stage (incremental) or per network")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-size", type=int, default=5000, help="training images held out for validation")
    ap.add_argument("--calib-images", type=int, default=1000, help="training images for activation scales")
    ap.add_argument("--limit", type=int, default=0, help="train on the first N training images only (smoke runs)")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--data-dir", default=None, help="folder with the IDX files (default: Fashion-MNIST)")
    ap.add_argument("--out", required=True, help="output folder (export.npz, float.npz, report.json)")
    ap.add_argument("--debug", action="store_true", help="on a failure, print the traceback too")
    return ap


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if min(args.epochs, args.batch, args.threads, args.calib_images, args.val_size) < 1 or args.lr <= 0 \
            or args.limit < 0:
        ap.error("--epochs, --batch, --threads, --calib-images and --val-size must be >= 1, "
                 "--limit >= 0 and --lr > 0")
    torch.set_num_threads(args.threads)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
