"""``make campaign``: seeded random layers on the native backend (``sim/native.py``), thousands
in the time cocotb takes for hundreds.

The layers are those of the cocotb campaign (``sim.tb_accel.gen_conv`` / ``gen_classifier``: odd
channel counts, K 1..7, stride 1 and 2, padding, pooling, random groups through WIDTH or CHAN,
extreme M and S), loaded and run by the same ``load_case`` through the host driver; the checks
are ``run_case``'s, made after the run on the words the harness read: STATUS, LAYER_CYCLES and
every datapath counter against ``hw.contract.schedule``, the output words against
``model.golden``, the words around the output untouched, a skipped classifier writing nothing.

    python -m sim.campaign --layers 10000                  # 8x8, SEED=1, every core
    python -m sim.campaign --layers 200 --seed 7 --first 4000   # layers 4000..4199 of seed 7
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from model.cli import OneLineParser
from sim.tb_accel import TB


class _Bench:
    """What ``sim.tb_accel.load_case`` needs of its testbench (``TB``'s own descriptor and CHAN
    writers), over a plain driver."""

    def __init__(self, drv, cfg):
        from hw.contract.regmap import regmap
        self.drv, self.cfg, self.n, self.map, self.bus = drv, cfg, cfg.rows, regmap(cfg), drv.bus

    write_descriptor, set_chan = TB.write_descriptor, TB.set_chan


def _rng(seed, *tags):
    import zlib
    return np.random.default_rng([seed] + [zlib.crc32(str(t).encode()) for t in tags])


async def _run_cases(drv, cfg, cases, seed) -> list:
    """Each case loaded (noise from its own generator, so recording and replay agree) and run
    from one START; returns what the checks need, read from the device."""
    from sim.tb_accel import ACT_WINDOW, load_case
    from hw.contract.schedule import DST_LOGITS
    bench = _Bench(drv, cfg)
    out = []
    for i, case in cases:
        d = case.desc
        lo, noise = await load_case(bench, case, _rng(seed, "native-load", i))
        before = await drv.read_logits(cfg.max_classes) if d["dst"] == DST_LOGITS else None
        await drv.clear_counters()
        await drv.start(case.slot, 1)
        st = await drv.wait(max_polls=2 * case.plan.cycles + 2000)
        counters = await drv.read_counters()
        cycles = await drv.read_reg("LAYER_CYCLES", case.slot)
        if d["dst"] == DST_LOGITS:
            got = await drv.read_logits(cfg.max_classes)
        else:
            got = (await drv.read_window(ACT_WINDOW[d["dst"]], len(noise), first=lo)).view(np.int8)
        out.append(dict(status=st, counters=counters, cycles=cycles, before=before, got=got, lo=lo, noise=noise))
    return out


def check(case, r) -> str | None:
    """``run_case``'s checks on one layer's read-back; None when it passed."""
    from hw.contract.regmap import Error
    from hw.contract.schedule import DST_LOGITS
    from sim.tb_accel import DATAPATH_COUNTERS
    st, d = r["status"], case.desc
    if not (st["done"] == 1 and st["error"] == 0 and st["busy"] == 0):
        return f"status {st} (error {Error(st['error_code']).name})"
    if r["cycles"] != case.plan.cycles:
        return f"LAYER_CYCLES {r['cycles']}, schedule {case.plan.cycles}"
    bad = [f"{k}: RTL {r['counters'][k]}, schedule {case.plan.counters.get(k, 0)}" for k in DATAPATH_COUNTERS
           if r["counters"][k] != case.plan.counters.get(k, 0)]
    if bad:
        return "counters differ from hw.contract.schedule: " + "; ".join(bad)
    if d["dst"] == DST_LOGITS:
        want = r["before"].copy()
        if not case.plan.skipped:
            want[:case.n_out] = case.expected
        return None if np.array_equal(r["got"], want) else f"logits {r['got'].tolist()}, expected {want.tolist()}"
    got, noise = r["got"], r["noise"]
    k0 = d["dst_base"] - r["lo"]
    out = got[k0:k0 + len(case.expected)]
    if not np.array_equal(out, case.expected):
        return f"{int((out != case.expected).sum())} output bytes differ from the golden model"
    guards = np.concatenate([got[:k0], got[k0 + len(case.expected):]])
    if not np.array_equal(guards, np.concatenate([noise[:k0], noise[k0 + len(case.expected):]])):
        return "words next to the output region were overwritten"
    return None


def chunk_job(args) -> dict:
    """Random layers [lo, hi) of ``seed`` (convolutions; every tenth index also a classifier)."""
    arr, seed, budget, lo, hi = args
    from sim import native, tb_accel
    tb_accel.SEED = seed  # the seed Case.describe() names in a failure
    from sim.runner import array_config
    cfg = array_config(arr)
    t = time.time()
    cases = []
    for i in range(lo, hi):
        cases.append((i, tb_accel.gen_conv(_rng(seed, "native", "conv", i), cfg, budget, f"conv layer {i}")))
        if i % 10 == 0:
            cases.append((i, tb_accel.gen_classifier(_rng(seed, "native", "classifier", i), cfg, budget,
                                                     f"classifier {i}")))
    gen = time.time() - t
    b = native.build_native(cfg)
    results, stats = native.run_coroutine(b, cfg, lambda d: _run_cases(d, cfg, cases, seed))
    fails = []
    for (i, case), r in zip(cases, results):
        why = check(case, r)
        if why:
            fails.append(f"[{case.label}] {why} -- {case.describe()}")
    return dict(layers=len(cases), convs=hi - lo, cycles=stats["cycles"], harness_seconds=stats["seconds"], generate_seconds=gen,
                failures=fails)


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m sim.campaign", description=__doc__.split("\n\n")[0])
    ap.add_argument("--array", default="8x8")
    ap.add_argument("--layers", type=int, default=10_000, help="random convolutions (plus one classifier per ten)")
    ap.add_argument("--first", type=int, default=0, help="index of the first layer")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=int, default=30_000, help="most cycles of one random layer")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--chunk", type=int, default=250, help="layers per harness run")
    args = ap.parse_args(argv)
    if min(args.layers, args.jobs, args.chunk, args.budget) < 1 or args.first < 0:
        print("error: --layers, --jobs, --chunk and --budget must be >= 1 and --first >= 0", file=sys.stderr)
        return 2
    from sim.runner import SimError, array_config
    from sim import native
    try:
        native.build_native(array_config(args.array), log=lambda m: print(f"[native] {m}", file=sys.stderr))
    except SimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    t0 = time.time()
    hi = args.first + args.layers
    jobs = [(args.array, args.seed, args.budget, a, min(a + args.chunk, hi)) for a in range(args.first, hi, args.chunk)]
    out = []
    from tqdm import tqdm
    with tqdm(total=args.layers, unit="layer", desc=f"campaign {args.array}", file=sys.stderr) as bar, \
            ProcessPoolExecutor(args.jobs) as pool:
        for fut in as_completed([pool.submit(chunk_job, j) for j in jobs]):
            r = fut.result()
            out.append(r)
            bar.update(r["convs"])
    wall = time.time() - t0
    fails = [f for r in out for f in r["failures"]]
    cycles = sum(r["cycles"] for r in out)
    print(f"campaign {args.array} seed {args.seed}: {sum(r['layers'] for r in out):,} random layers "
          f"({args.layers:,} convolutions and their classifiers), {len(fails)} failed; {cycles:,} cycles in "
          f"{wall:.0f} s on {args.jobs} processes ({cycles / sum(r['harness_seconds'] for r in out):,.0f} cycles/s "
          f"per harness; generating the layers {sum(r['generate_seconds'] for r in out):.0f} s of CPU)")
    for f in fails[:10]:
        print(f"FAIL {f}")
    if fails:
        print(f"rerun: python -m sim.campaign --array {args.array} --seed {args.seed} --first <layer> --layers 1")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
