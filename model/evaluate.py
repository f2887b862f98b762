"""Evaluate an int8 export with the bit-exact golden model at one or more widths.

Examples::

    python -m model.evaluate --sweep                       # shipped export, all widths, full test set
    python -m model.evaluate --width 0.25,1 --images 2000
    python -m model.evaluate --groups 1,2,4 --json build/eval.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import golden, profiles
from .data import DatasetError, check_images, load_split
from .export import DEFAULT_EXPORT, ExportError, load_export
from .outputs import OutputError, check_file, write_text
from .cli import OneLineParser


def parse_groups(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise golden.WidthError(f"--groups takes comma-separated integers, e.g. 1,2,4; got {text!r}") from None


def evaluate(export, split, configs) -> list[dict]:
    """One row per configuration: groups, int8 accuracy, MACs/image, parameter bytes, speed."""
    rows = []
    for cfg in configs:
        t = time.perf_counter()
        res = golden.run(export, split.images, **cfg, keep_acts=False)
        dt = time.perf_counter() - t
        macs = export.macs(res.groups)
        rows.append(dict(config=cfg, groups=list(res.groups),
                         int8_accuracy=float((res.predictions == split.labels).mean()),
                         images=len(split), macs_per_image=sum(macs), macs_per_layer=macs,
                         param_bytes=export.param_bytes(res.groups), seconds=round(dt, 3),
                         images_per_second=round(len(split) / dt, 1)))
    return rows


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m model.evaluate", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", default=str(DEFAULT_EXPORT), help="int8 export (default: the shipped one)")
    ap.add_argument("--width", action="append", default=[], help="uniform width(s), e.g. 0.25 or 0.25,1")
    ap.add_argument("--groups", action="append", default=[], help="per-layer active groups, e.g. 1,2,4")
    ap.add_argument("--sweep", action="store_true", help="every uniform width 1/G..1 (the default)")
    ap.add_argument("--images", type=int, default=0, help="first N test images (default: all)")
    ap.add_argument("--data-dir", default=None, help="folder with the IDX files (default: Fashion-MNIST)")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    try:
        if args.images < 0:
            raise ValueError(f"--images must be >= 0, got {args.images}")
        json_path = check_file(args.json, "--json") if args.json else None
        export = load_export(args.export)
        G = export.groups
        configs = []
        for w in ",".join(args.width).split(",") if args.width else []:
            configs.append(dict(groups=golden.resolve_groups(export, width=w.strip())))
        for g in args.groups:
            configs.append(dict(groups=golden.resolve_groups(export, groups=parse_groups(g))))
        if args.sweep or not configs:
            configs = [dict(groups=golden.resolve_groups(export, width=k / G)) for k in range(1, G + 1)] + \
                [c for c in configs if len(set(c["groups"])) > 1]
        split = load_split("test", args.data_dir)
        check_images(split, export.meta["input"]["channels"], export.meta["input"]["size"],
                     "the network's input (its export)")
        if args.images:
            split = split.take(slice(0, args.images))
        rows = evaluate(export, split, configs)
    except (ExportError, DatasetError, golden.WidthError, OutputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    recorded = export.meta.get("accuracy", {})
    print(f"export {args.export}: {export.meta.get('scheme', '?')} training, head {export.meta['head']}, "
          f"G={G}, {Path(args.export).stat().st_size} bytes on disk")
    print(f"{'groups':>12} {'int8 acc':>9} {'recorded':>9} {'MACs/img':>10} {'param B':>8} {'img/s':>8}")
    for r in rows:
        g = r["groups"]
        # The recorded figure is on the full test set: only comparable when that is what ran.
        rec = recorded.get(profiles.key(g), {}).get("int8_test") if not args.images else None
        print(f"{','.join(map(str, g)):>12} {r['int8_accuracy']:9.4f} {rec if rec is not None else '-':>9} "
              f"{r['macs_per_image']:>10} {r['param_bytes']:>8} {r['images_per_second']:>8}")
    if json_path:
        write_text(json_path, json.dumps(dict(export=args.export, rows=rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
