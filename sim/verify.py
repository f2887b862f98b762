"""``make verify``: the Fashion-MNIST test set on the RTL through the native backend
(``sim/native.py``), every image at every configuration, each frame's logits against the golden
model and its counters against the model backend.

Images stream back to back, the configuration changing before every frame (uniform widths by
the WIDTH register, profiles by CHAN), the program loaded once per chunk of images. The chunks
run in ``--jobs`` processes, one harness each.

    python -m sim.verify                                  # 10,000 images x 4 widths, 8x8, both cores
    python -m sim.verify --images 200 --profiles          # and every useful per-layer profile
    python -m sim.verify --target ecp5 --images 500       # the ECP5 netlist (MULT18X18D model)
    python -m sim.verify --first 1234 --images 1 --configs 1,2,4   # rerun one case
"""
from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from model.cli import OneLineParser
from sw.measure import RunConfig
from sw.model_device import BUS_TIMED  # the counters the model does not predict


def model_counters(cfg, program, configs, image, classes) -> dict:
    """{groups: the model backend's counters of one frame, those it predicts} (the same for
    every image)."""
    from sw.runtime import profile_counters
    return {g: {k: v for k, v in c.items() if k not in BUS_TIMED}
            for g, c in profile_counters(program, cfg, configs, image, classes).items()}


def compare(frames: list, expected_logits: dict, expected_counters: dict, first: int) -> list[dict]:
    """Every mismatch of the frames of one chunk (``frames[i]`` = (image index, groups, result)):
    logits against ``expected_logits[groups][image - first]``, counters against
    ``expected_counters[groups]``."""
    out = []
    for image, groups, r in frames:
        want = [int(x) for x in expected_logits[groups][image - first]]
        diff = {k: [r["counters"][k], v] for k, v in expected_counters[groups].items() if r["counters"].get(k) != v}
        if r["logits"] != want or diff:
            out.append(dict(image=image, groups=list(groups), rtl_logits=r["logits"], golden_logits=want,
                            counters_rtl_vs_model=diff))
    return out


async def layer_outputs(drv, program, groups, image, words: list[int]) -> list:
    """Each convolution of ``groups`` run alone, in order, on ``image``; its first ``words[j]``
    output entries read back from the activation buffer it wrote (uint8 rows)."""
    from hw.contract.program import image_bytes
    from hw.contract.schedule import BUF_A
    from sw.measure import configure
    await drv.load_program(program)
    await configure(drv, program, RunConfig.of(groups))
    await drv.load_image(image_bytes(program, image))
    out = []
    for j, n in enumerate(words):
        await drv.run(j, 1)
        out.append(await drv.read_window("ACT_A" if program.descs[j]["dst"] == BUF_A else "ACT_B", n))
    return out


def first_bad_layer(build, cfg, program, export, groups, image, expected_acts=None) -> str:
    """The first convolution whose output on the RTL differs from ``expected_acts`` (default:
    the golden model's, one (C, H, W) int8 array per convolution) for one image at one profile,
    each layer run alone and its output read back; "none" when every convolution agrees (then
    the classifier differs)."""
    from hw.contract.program import act_words
    from model import golden
    from sim import native
    if expected_acts is None:
        expected_acts = [a[0] for a in golden.run(export, image[None], groups=groups).acts]
    want = [act_words(a, cfg.rows).view(np.uint8) for a in expected_acts]
    got, _ = native.run_coroutine(build, cfg, lambda d: layer_outputs(d, program, groups, image,
                                                                      [len(w) for w in want]))
    for layer, g, w in zip(export.convs, got, want):
        if not np.array_equal(g, w):
            return layer.name
    return "none"


def chunk_job(args) -> dict:
    """One harness run: images [lo, hi) at every configuration."""
    (arr, target, lo, hi, configs, counters) = args
    from hw.contract.program import build_program
    from model import golden
    from model.data import load_split
    from model.export import load_export
    from sim import native
    from sim.runner import array_config
    from sw.measure import measure_frames
    ex, cfg = load_export(), array_config(arr)
    program = build_program(ex, cfg)
    images = load_split("test").images[lo:hi]
    classes = ex.heads[ex.groups].out_channels
    b = native.build_native(cfg, target)
    frames = [(RunConfig.of(g), images[i]) for i in range(len(images)) for g in configs]
    t = time.time()
    session, stats = native.run_coroutine(b, cfg, lambda d: measure_frames(d, program, frames, classes))
    wall = time.time() - t
    want = {g: golden.run(ex, images, groups=g, keep_acts=False).logits for g in configs}
    tagged = [(lo + k // len(configs), configs[k % len(configs)], f) for k, f in enumerate(session["frames"])]
    return dict(lo=lo, hi=hi, frames=len(frames), cycles=stats["cycles"], harness_seconds=stats["seconds"],
                wall_seconds=wall, mismatches=compare(tagged, want, counters, lo))


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m sim.verify", description=__doc__.split("\n\n")[0])
    ap.add_argument("--array", default="8x8")
    ap.add_argument("--target", choices=["portable", "ecp5"], default="portable",
                    help="the portable Verilog, or the ECP5 netlist `make synth` places")
    ap.add_argument("--first", type=int, default=0, help="first test image")
    ap.add_argument("--images", type=int, default=10_000, help="test images (default: all from --first)")
    ap.add_argument("--configs", action="append", default=[], metavar="G1,G2,..",
                    help="profiles to run (repeatable; default: every uniform width)")
    ap.add_argument("--profiles", action="store_true", help="every useful per-layer profile too")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: every core)")
    ap.add_argument("--chunk", type=int, default=250, help="images per harness run")
    ap.add_argument("--json", default=None, help="write the summary as JSON")
    args = ap.parse_args(argv)
    from model import profiles
    from model.data import DatasetError, load_split
    from model.export import ExportError, load_export
    from model.outputs import OutputError, Outputs, check_file
    from sim.runner import SimError, array_config
    try:
        if args.images < 1 or args.first < 0 or args.jobs < 1 or args.chunk < 1:
            raise ValueError("--images, --jobs and --chunk must be >= 1 and --first >= 0")
        out_path = check_file(args.json, "--json") if args.json else None
        ex = load_export()
        test = load_split("test")
        if args.first + args.images > len(test):
            args.images = len(test) - args.first
            if args.images < 1:
                raise ValueError(f"--first {args.first} is past the {len(test)} test images")
        G, L = ex.groups, len(ex.convs)
        configs = [profiles.parse(c, G, L) for c in args.configs] or [(k,) * L for k in range(1, G + 1)]
        if args.profiles:
            configs = list(dict.fromkeys(configs + profiles.useful(G, L)))
        cfg = array_config(args.array)
    except (ValueError, ExportError, DatasetError, OutputError, SimError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from hw.contract.program import build_program
    from sim import native
    target = None if args.target == "portable" else args.target
    program = build_program(ex, cfg)
    classes = ex.heads[ex.groups].out_channels
    t0 = time.time()
    try:
        b = native.build_native(cfg, target, log=lambda m: print(f"[native] {m}", file=sys.stderr, flush=True))
    except SimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    counters = model_counters(cfg, program, configs, test.images[0], classes)
    lo, hi = args.first, args.first + args.images
    jobs = [(args.array, target, a, min(a + args.chunk, hi), configs, counters) for a in range(lo, hi, args.chunk)]
    results = []
    from tqdm import tqdm
    bar = tqdm(total=args.images * len(configs), unit="frame", desc=f"verify {b.label}", file=sys.stderr)
    try:
        with ProcessPoolExecutor(args.jobs) as pool:
            for fut in as_completed([pool.submit(chunk_job, j) for j in jobs]):
                r = fut.result()
                results.append(r)
                bar.update(r["frames"])
    except SimError as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr)
        return 1
    bar.close()
    wall = time.time() - t0
    results.sort(key=lambda r: r["lo"])
    mism = [m for r in results for m in r["mismatches"]]
    cycles = sum(r["cycles"] for r in results)
    harness = sum(r["harness_seconds"] for r in results)
    summary = dict(array=args.array, target=args.target, build=b.label, images=args.images, first=lo,
                   configs=[profiles.key(g) for g in configs], frames=sum(r["frames"] for r in results),
                   mismatches=len(mism), simulated_cycles=cycles, wall_seconds=round(wall, 1), jobs=args.jobs,
                   cycles_per_s=round(cycles / wall), cycles_per_s_per_core=round(cycles / harness),
                   first_mismatch=mism[0] if mism else None)
    print(f"verify {b.label} ({args.target}): {summary['frames']:,} frames ({args.images:,} images x "
          f"{len(configs)} configurations), {len(mism)} mismatches; {cycles:,} cycles in {wall:.0f} s "
          f"({summary['cycles_per_s']:,} cycles/s on {args.jobs} processes, "
          f"{summary['cycles_per_s_per_core']:,} per harness)")
    if mism:
        m = mism[0]
        groups = tuple(m["groups"])
        m["first_bad_layer"] = first_bad_layer(b, cfg, program, ex, groups, test.images[m["image"]])
        print(f"first mismatch: image {m['image']}, profile {profiles.key(groups)}: RTL logits {m['rtl_logits']}, "
              f"golden {m['golden_logits']}, counters (RTL, model) {m['counters_rtl_vs_model']}; first "
              f"convolution whose output differs: {m['first_bad_layer']}")
        print(f"rerun it: python -m sim.verify --array {args.array} --target {args.target} --first {m['image']} "
              f"--images 1 --configs {profiles.key(m['groups'])}")
    if out_path:
        o = Outputs()
        o.text(out_path, json.dumps(summary, indent=1))
        for p in o.commit():
            print(f"wrote {p}")
    return 1 if mism else 0


if __name__ == "__main__":
    sys.exit(main())
