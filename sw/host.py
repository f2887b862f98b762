"""chanscale host: run the int8 network on the accelerator at one or more widths and report
cycles, utilization, energy and accuracy per configuration.

examples:
  python sw/host.py --width 0.25                      # one width, fast exact model backend
  python sw/host.py --sweep --json build/sweep.json --csv build/sweep.csv --plot build/plots
  python sw/host.py --width 0.25,1 --layer-groups 1,2,4 --opp low
  python sw/host.py --sweep --backend verilator --images 2   # the same driver on the RTL (cocotb)
  python sw/host.py --sweep --backend native --images 20     # the RTL in a compiled Verilator harness
  python sw/host.py --width 1 --array 16x16 --clock-mhz 125
  python sw/host.py --pareto --array 16x16 --json build/pareto.json --plot build/pareto   # every profile
  python sw/host.py --trace step --json build/step.json --csv build/step.csv --plot build/trace   # runtime manager
  python sw/host.py --trace walk --backend verilator --rtl-frames 100    # its first 100 frames on the RTL

Every figure comes from the device's own performance counters (the model backend predicts them
exactly; tests compare it with the RTL). Accuracy is the bit-exact golden model's on the
evaluation images; RTL runs also report whether every logit matched the golden model.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python sw/host.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from hw.contract.params import ARRAY_HELP, parse_array  # noqa: E402
from hw.contract.program import build_program  # noqa: E402
from model import golden, profiles  # noqa: E402
from model.cli import OneLineParser  # noqa: E402
from model.data import DatasetError, check_images, load_split, train_val_split  # noqa: E402
from model.export import DEFAULT_EXPORT, ExportError, load_export  # noqa: E402
from model.outputs import OutputError, Outputs, check_dir, check_file  # noqa: E402
from sim.runner import SimError, missing_simulator  # noqa: E402
from sw import pareto, runtime, traces  # noqa: E402
from sw import report as rep  # noqa: E402
from sw.driver import AcceleratorError, Driver  # noqa: E402
from sw.energy import OPP_SETS, OPPS, OperatingPoint  # noqa: E402
from sw.measure import RunConfig, measure  # noqa: E402
from sw.model_device import ModelBus  # noqa: E402

BACKENDS = ("model", "verilator", "icarus", "native")
# --clock-mhz: from 1 kHz (slower has no use, and the energies' digits explode) to 10 GHz
CLOCK_MHZ = (1e-3, 1e4)


class UsageError(ValueError):
    pass


def parse_configs(args, G: int, n_layers: int) -> list[RunConfig]:
    configs = []
    widths = [w.strip() for item in args.width for w in item.split(",") if w.strip()]
    if args.width and not widths:
        raise UsageError("--width needs a value such as 0.25 or 0.25,0.5")
    for w in widths:
        k = golden.width_groups(w, G)
        configs.append(RunConfig(groups=(k,) * n_layers, uniform=k))
    for item in args.layer_groups:
        groups = profiles.parse(item, G, n_layers)
        configs.append(RunConfig(groups=groups, uniform=None))
        if not profiles.is_useful(groups):  # run its clipped equivalent too, to show the waste
            configs.append(RunConfig.of(profiles.clip(groups)))
    if args.pareto:
        if configs:
            raise UsageError("--pareto runs every useful profile; leave out --width and --layer-groups")
        return [RunConfig.of(p) for p in profiles.useful(G, n_layers)]
    if args.sweep or not configs:
        sweep = [RunConfig(groups=(k,) * n_layers, uniform=k) for k in range(1, G + 1)]
        configs = sweep + [c for c in configs if c not in sweep]
    return list(dict.fromkeys(configs))


def run_backend(backend, acfg, program, configs, images, classes, waves=False):
    if backend == "model":
        return asyncio.run(measure(Driver(ModelBus(acfg), acfg), program, configs, images, classes))
    if backend == "native":
        from sim import native
        return native.session(acfg, lambda d: measure(d, program, configs, images, classes),
                              log=lambda m: print(f"[native] {m}", file=sys.stderr, flush=True))
    from sw.rtl import run_rtl
    return run_rtl(backend, acfg, program, configs, images, classes, waves=waves)


def main(argv=None) -> int:
    ap = OneLineParser(prog="python sw/host.py", description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", action="append", default=[], help="uniform width(s): 0.25 or 0.25,0.5,0.75,1")
    ap.add_argument("--sweep", action="store_true", help="every uniform width 1/G..1 (the default)")
    ap.add_argument("--layer-groups", action="append", default=[], metavar="G1,G2,..",
                    help="non-uniform width: active groups per convolution, e.g. 1,2,4 (repeatable)")
    ap.add_argument("--pareto", action="store_true",
                    help="every useful per-layer profile: accuracy (validation, test), cycles, energy, the fronts")
    ap.add_argument("--trace", default=None, metavar="NAME|FILE.csv",
                    help="run the runtime manager and its baselines on a budget trace: step, walk, energy or a "
                         "CSV file (sw/traces.py)")
    ap.add_argument("--frames", type=int, default=None, help="--trace: frames (default 10,000; a file: all rows)")
    ap.add_argument("--opps", choices=sorted(OPP_SETS), default="dvfs",
                    help="--trace: operating points, dvfs (voltage and clock) or fpga (clock only)")
    ap.add_argument("--rtl-frames", type=int, default=100,
                    help="--trace with an RTL backend: the manager's first N frames run on the RTL")
    ap.add_argument("--backend", choices=BACKENDS, default="model",
                    help="model (fast, exact counters), the RTL on verilator / icarus through cocotb, or native "
                         "(the RTL in a compiled Verilator harness, sim/native.py)")
    ap.add_argument("--checkpoint", default=str(DEFAULT_EXPORT), help="int8 export (default: the shipped one)")
    ap.add_argument("--images", type=int, default=1, help="test images run on the device per configuration")
    ap.add_argument("--eval-images", type=int, default=0, help="images for int8 accuracy (default: all 10,000; "
                    "with --pareto, the first N of the validation split too)")
    ap.add_argument("--array", default="8x8", help=ARRAY_HELP)
    ap.add_argument("--opp", choices=sorted(OPPS), default="nominal", help="DVFS operating point (V, f)")
    ap.add_argument("--clock-mhz", type=float, default=None, help="override the operating point's clock")
    ap.add_argument("--data-dir", default=None, help="IDX folder (default: Debian's Fashion-MNIST)")
    ap.add_argument("--json", default=None, help="write the report as JSON")
    ap.add_argument("--csv", default=None, help="write the per-layer rows as CSV")
    ap.add_argument("--plot", default=None, metavar="DIR", help="write PNG plots into DIR")
    ap.add_argument("--waves", action="store_true", help="RTL backends: write waveforms under build/")
    ap.add_argument("--debug", action="store_true", help="on a failure, print the traceback too")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except Exception as e:  # a failure during the run: one line (its traceback with --debug)
        if args.debug:
            raise
        print(f"error: {type(e).__name__}: {e} (run again with --debug for the traceback)", file=sys.stderr)
        return 1


def run(args) -> int:
    t0 = time.time()
    if args.trace is not None:
        return run_trace(args, t0)
    try:  # everything that can fail on bad input happens before any output is written
        if args.images < 1:
            raise UsageError(f"--images must be >= 1, got {args.images}")
        if args.eval_images < 0:
            raise UsageError(f"--eval-images must be >= 0, got {args.eval_images}")
        opp = OPPS[args.opp]
        if args.clock_mhz is not None:
            if not CLOCK_MHZ[0] <= args.clock_mhz <= CLOCK_MHZ[1]:  # also refuses nan and inf
                raise UsageError(f"--clock-mhz must be a clock in MHz from {CLOCK_MHZ[0]:g} to {CLOCK_MHZ[1]:g}, "
                                 f"got {args.clock_mhz}")
            opp = OperatingPoint(opp.name, opp.volts, args.clock_mhz, opp.doc + f", clock set to {args.clock_mhz} MHz")
        outputs = _outputs(args)
        export = load_export(args.checkpoint)
        configs = parse_configs(args, export.groups, len(export.convs))
        acfg, program = _mapped(export, args.array)
        test = _test_split(export, args)
        eval_split = test.take(slice(0, args.eval_images)) if args.eval_images else test
        # --pareto takes the accuracy model.train recorded (standard data, every image), else measures it
        recorded = _recorded_accuracy(export, configs) if args.pareto and not (args.data_dir or args.eval_images) \
            else None
        val_split = _validation_split(export, args) if args.pareto and recorded is None else None
        images = test.images[:args.images]
        _check_backend(args.backend)
    except (UsageError, golden.WidthError, profiles.ProfileError, ExportError, DatasetError, OutputError,
            ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    classes = export.heads[export.groups].out_channels
    accuracy, golden_logits = {}, {}
    for c in configs:
        acc = recorded[c.name][1] if recorded else golden.accuracy(export, eval_split.images, eval_split.labels,
                                                                   groups=c.groups)
        accuracy[c.name] = (acc, len(eval_split))
        golden_logits[c.name] = golden.run(export, images, groups=c.groups, keep_acts=False).logits
    try:
        session = run_backend(args.backend, acfg, program, configs, images, classes, waves=args.waves)
    except (AcceleratorError, SimError) as e:  # the device reported an error, or a simulator failed
        print(f"error: {e}", file=sys.stderr)
        return 1
    report = rep.build(session, program, export, acfg, opp, golden_logits, accuracy, args.backend)
    report["seconds"] = round(time.time() - t0, 1)
    out = Outputs()
    if args.pareto:
        val = {c.name: recorded[c.name][0] if recorded else
               golden.accuracy(export, val_split.images, val_split.labels, groups=c.groups) for c in configs}
        doc = pareto.document(report, {c.name: (val[c.name], accuracy[c.name][0]) for c in configs},
                              "export metadata (golden model, recorded by model.train)" if recorded else
                              f"golden model on {len(val_split)} validation / {len(eval_split)} test images")
        print(pareto.table_text(doc))
        pareto.add_outputs(out, doc, *outputs)
    else:
        notes = _clipped(report)
        print(rep.table(report))
        for note in notes:
            print(note)
        rep.add_outputs(out, report, *outputs)
    for p in out.commit():
        print(f"wrote {p}")
    print(f"done in {report['seconds']} s")
    return 0 if all(c["outputs_match_golden"] for c in report["configs"]) else 1


def run_trace(args, t0) -> int:
    """--trace: the runtime manager against its baselines (sw/runtime.py)."""
    try:
        if args.width or args.layer_groups or args.pareto or args.sweep:
            raise UsageError("--trace chooses the widths itself; leave out --width, --layer-groups, --sweep and --pareto")
        if args.opp != "nominal" or args.clock_mhz is not None:
            raise UsageError("--trace chooses the operating point itself; pick the set with --opps, not --opp or "
                             "--clock-mhz")
        if args.frames is not None and args.frames < 1:
            raise UsageError(f"--frames must be >= 1, got {args.frames}")
        if args.rtl_frames < 1:
            raise UsageError(f"--rtl-frames must be >= 1, got {args.rtl_frames}")
        outputs = _outputs(args)
        if args.trace not in traces.SHIPPED:
            traces.resolve(args.trace, args.frames, 1.0, 1.0)  # a file's errors, before any work
        export = load_export(args.checkpoint)
        acfg, program = _mapped(export, args.array)
        useful = profiles.useful(export.groups, len(export.convs))
        recorded = _recorded_accuracy(export, [RunConfig.of(g) for g in useful])
        if recorded is None:
            raise UsageError("--trace needs every profile's validation accuracy in the export's metadata "
                             "(`accuracy`); retrain it with `python -m model.train`")
        test = _test_split(export, args)
        _check_backend(args.backend)
    except (UsageError, traces.TraceError, ExportError, DatasetError, OutputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    val = {g: recorded[RunConfig.of(g).name][0] for g in useful}
    tst = {g: recorded[RunConfig.of(g).name][1] for g in useful}
    doc = runtime.run_trace(export, program, acfg, args.trace, args.frames, args.opps, test, val, tst,
                            progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    ok = True
    if args.backend != "model":
        try:
            doc["rtl"] = runtime.verify_on_rtl(doc, args.backend, export, program, acfg, test,
                                               min(args.rtl_frames, doc["trace"]["frames"]), waves=args.waves)
        except (AcceleratorError, SimError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        ok = doc["rtl"]["bit_exact"]
    doc["seconds"] = round(time.time() - t0, 1)
    print(runtime.table_text(doc))
    if "rtl" in doc:
        v = doc["rtl"]
        print(f"RTL ({v['backend']}): the manager's first {v['frames']} frames, {v['width_switches']} width "
              f"switches, profiles {' '.join(v['profiles'])}: "
              + ("every frame's logits equal the golden model's and every counter the model backend's"
                 if ok else f"{len(v['problems'])} MISMATCHES, first: {v['problems'][0]}"))
    out = Outputs()
    runtime.add_outputs(out, doc, *outputs)
    for p in out.commit():
        print(f"wrote {p}")
    print(f"done in {doc['seconds']} s")
    return 0 if ok else 1


def _outputs(args) -> list:
    """--json, --csv and --plot checked before any work (None where not given)."""
    return [check_file(args.json, "--json") if args.json else None,
            check_file(args.csv, "--csv") if args.csv else None,
            check_dir(args.plot, "--plot") if args.plot else None]


def _mapped(export, array: str):
    """(ArrayConfig, Program) of ``export`` on ``--array``; UsageError when it does not fit."""
    acfg = parse_array(array)
    try:
        return acfg, build_program(export, acfg)
    except ValueError as e:
        raise UsageError(f"the network does not map onto a {array} array: {e}") from None


def _test_split(export, args):
    test = load_split("test", args.data_dir)
    check_images(test, export.meta["input"]["channels"], export.meta["input"]["size"],
                 "the network's input (its export)")
    return test


def _check_backend(backend: str) -> None:
    if backend != "model":
        why = missing_simulator("verilator" if backend == "native" else backend)
        if why:
            raise UsageError(why)


def _recorded_accuracy(export, configs) -> dict | None:
    """{config name: (validation, test)} int8 accuracy as model.train recorded it in the export
    (the golden model on the standard splits), or None when it lacks a profile."""
    rec = export.meta.get("accuracy", {})
    keys = {c.name: profiles.key(c.groups) for c in configs}
    if not all(k in rec and {"int8_val", "int8_test"} <= set(rec[k]) for k in keys.values()):
        return None
    return {name: (rec[k]["int8_val"], rec[k]["int8_test"]) for name, k in keys.items()}


def _validation_split(export, args):
    """The held-out training images the export was selected on (its metadata names them)."""
    v = export.meta.get("validation")
    if not v:
        raise UsageError("this export records neither every profile's accuracy nor its validation split "
                         "(`validation` in its metadata), which --pareto needs; retrain it with "
                         "`python -m model.train`")
    full = load_split("train", args.data_dir)
    check_images(full, export.meta["input"]["channels"], export.meta["input"]["size"],
                 "the network's input (its export)")
    val = train_val_split(full, v["images"], v["seed"])[1]
    return val.take(slice(0, args.eval_images)) if args.eval_images else val


def _clipped(report) -> list[str]:
    """A narrowing profile computes its clipped profile's logits: record that in its report entry
    (``clipped_to``, ``wasted_cycles``) and return a note per such profile."""
    by_groups = {tuple(c["groups"]): c for c in report["configs"]}
    notes = []
    for c in report["configs"]:
        clipped = profiles.clip(c["groups"])
        if clipped != tuple(c["groups"]) and clipped in by_groups:
            c["clipped_to"] = list(clipped)
            c["wasted_cycles"] = c["total"]["cycles"] - by_groups[clipped]["total"]["cycles"]
            notes.append(f"note: profile {profiles.key(c['groups'])} computes exactly the logits of "
                         f"{profiles.key(clipped)} (no later layer reads the groups it adds) and wastes "
                         f"{c['wasted_cycles']:,} of its {c['total']['cycles']:,} cycles; run "
                         f"{profiles.key(clipped)} instead")
    return notes


if __name__ == "__main__":
    sys.exit(main())
