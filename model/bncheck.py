"""Does one BatchNorm parameter set per layer serve every profile? For each useful profile of a
trained float network: validation accuracy with the shared running statistics (what the export
folds into one M/S per channel) and with statistics re-estimated for that profile alone (what a
per-profile requantization table would hold). The gap is what sharing costs.

    python -m model.bncheck --float build/train/float.npz [--images 2000] [--json F]
"""
from __future__ import annotations

import copy
import json
import sys

import numpy as np
import torch

from . import kernels, profiles
from .cli import OneLineParser
from .data import DatasetError, load_split, train_val_split
from .net import image_to_float
from .outputs import OutputError, check_file, write_text
from .quantize import INPUT_SHIFT
from .train import float_accuracy, load_float


@torch.no_grad()
def reestimated(net, groups, images: np.ndarray):
    """A copy of ``net`` whose BatchNorm statistics are those of ``images`` run at ``groups``."""
    net = copy.deepcopy(net)
    for bn in net.bns:
        bn.frozen[:] = False
        bn.momentum = 1.0  # one batch: the running statistics become that batch's
    net.train()
    net(image_to_float(torch.from_numpy(images), INPUT_SHIFT), groups)
    return net.eval()


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m model.bncheck", description=__doc__.split("\n\n")[0])
    ap.add_argument("--float", required=True, help="float.npz written by python -m model.train")
    ap.add_argument("--images", type=int, default=2000, help="training images to re-estimate statistics on")
    ap.add_argument("--val-size", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0, help="the training run's seed (its validation split)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    kernels.pin()
    try:
        if args.images < 2:
            raise ValueError(f"--images must be >= 2, got {args.images}")
        json_path = check_file(args.json, "--json") if args.json else None
        net = load_float(args.float)
        train, val = train_val_split(load_split("train"), args.val_size, args.seed)
    except (DatasetError, OutputError, OSError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    G, n = net.cfg.groups, len(net.cfg.convs)
    rows = []
    print(f"{'profile':>8} {'shared BN':>10} {'own BN':>8} {'gap':>6}")
    for p in profiles.useful(G, n):
        shared = float_accuracy(net, val, p)
        own = float_accuracy(reestimated(net, p, train.images[:args.images]), val, p)
        rows.append(dict(profile=profiles.key(p), shared_bn=shared, own_bn=own))
        print(f"{profiles.key(p):>8} {100 * shared:9.2f}% {100 * own:7.2f}% {100 * (own - shared):+6.2f}", flush=True)
    gaps = [r["own_bn"] - r["shared_bn"] for r in rows]
    print(f"own minus shared: mean {100 * np.mean(gaps):+.2f}, max {100 * max(gaps):+.2f} points")
    if json_path:
        write_text(json_path, json.dumps(dict(float=args.float, images=args.images, rows=rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
