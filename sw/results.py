"""The generated results: ``python -m sw.results`` (``make report``) measures the shipped export on
the exact model backend and the golden model and writes

* ``docs/results.md``: accuracy per width, per-layer cycles / utilisation / energy per width on
  the 8x8 array, network totals on every array size, the dynamic range, the runtime manager
  and its baselines on the shipped traces;
* ``docs/registers.md``: the register map (``hw.contract.regmap``);
* ``docs/training.md``'s result blocks: the training record (``model/ref/runs.json``, model.runs);
* the README's result blocks (between ``<!-- results:NAME:begin -->`` and ``... :end -->``);
* ``docs/plots/*.png``.

``tests/test_docs.py`` regenerates the text and requires every file to equal it, so a number in
the README or the docs cannot drift from the code. Figures that cannot be regenerated cheaply
(training time, FPGA runs, simulation speed) live in ``docs/`` with their date, commit and machine.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from hw.contract.params import ArrayConfig
from hw.contract.program import build_program
from hw.contract.regmap import markdown as regmap_markdown
from model import golden, profiles, runs as training
from model.data import DatasetError, load_split
from model.export import DEFAULT_EXPORT, ExportError, load_export
from model.outputs import Outputs
from sim.runner import array_config
from sw import pareto, traces
from sw import report as rep
from sw.driver import Driver
from sw.energy import OPPS, V_REF, units_table
from sw.measure import RunConfig, measure
from sw.model_device import ModelBus
from model.cli import OneLineParser

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
ARRAYS = ("4x4", "8x8", "16x16")
MAIN_ARRAY = "8x8"
# A per-layer profile to set beside the uniform widths: it costs about what uniform 0.5 costs.
PROFILE = (1, 2, 4)


def configs(export) -> list[RunConfig]:
    n, G = len(export.convs), export.groups
    uniform = [RunConfig(groups=(k,) * n, uniform=k) for k in range(1, G + 1)]
    return uniform + ([RunConfig(groups=PROFILE, uniform=None)] if len(PROFILE) == n else [])


def collect(export, test) -> dict:
    """Every figure of the generated docs: the golden model's int8 accuracy on ``test`` (the
    whole split) and, per array size, the model backend's report of one image per configuration
    at the nominal operating point."""
    runs = configs(export)
    image = test.images[:1]
    accuracy = {c.name: (golden.accuracy(export, test.images, test.labels, groups=c.groups), len(test))
                for c in runs}
    classes = export.heads[export.groups].out_channels
    n, G = len(export.convs), export.groups
    every = [RunConfig.of(p) for p in profiles.useful(G, n)]
    recorded = export.meta.get("accuracy", {})
    if not all(profiles.key(c.groups) in recorded for c in every):
        every = []  # no per-profile accuracy: no front
    # every useful profile's accuracy as model.train recorded it (golden model): (validation, test)
    acc = {c.name: (recorded[profiles.key(c.groups)]["int8_val"], recorded[profiles.key(c.groups)]["int8_test"])
           for c in every}
    measured = list(dict.fromkeys(runs + every))  # one measurement session per array serves both
    logits = logits_of(export, measured, image)
    reports, fronts = {}, {}
    for text in ARRAYS:
        acfg = array_config(text)
        program = build_program(export, acfg)
        session = asyncio.run(measure(Driver(ModelBus(acfg), acfg), program, measured, image, classes))
        reports[text] = rep.build(_only(session, runs), program, export, acfg, OPPS["nominal"], logits, accuracy,
                                  "model")
        if every:
            full = rep.build(_only(session, every), program, export, acfg, OPPS["nominal"], logits,
                             {k: (v[1], 0) for k, v in acc.items()}, "model")
            fronts[text] = pareto.document(full, acc, "export metadata")
    return dict(meta=export.meta, reports=reports, fronts=fronts, runtime=runtime_docs(export, test, every),
                runs=training.load_record())


def runtime_docs(export, test, every) -> dict:
    """The runtime manager and its baselines on every shipped trace (the main array, DVFS
    points), and on the step trace with the FPGA's clock-only points."""
    if not every:
        return {}
    from sw import runtime
    acfg = array_config(MAIN_ARRAY)
    program = build_program(export, acfg)
    rec = export.meta["accuracy"]
    val = {c.groups: rec[profiles.key(c.groups)]["int8_val"] for c in every}
    tst = {c.groups: rec[profiles.key(c.groups)]["int8_test"] for c in every}
    runs = [(t, "dvfs") for t in traces.SHIPPED] + [("step", "fpga")]
    return {f"{t} {o}": runtime.run_trace(export, program, acfg, t, None, o, test, val, tst) for t, o in runs}


def _only(session: dict, runs) -> dict:
    """``session`` with just the configurations of ``runs``, in their order."""
    by_name = {c["name"]: c for c in session["configs"]}
    return dict(session, configs=[by_name[c.name] for c in runs])


def logits_of(export, runs, image) -> dict:
    return {c.name: golden.run(export, image, groups=c.groups, keep_acts=False).logits for c in runs}


# ------------------------------------------------------------------------------------ rendering


def _n(x) -> str:
    return f"{x:,}"


def _label(c) -> str:
    return f"{c['width']:g}" if c["width"] else "profile " + ",".join(map(str, c["groups"]))


def accuracy_table(data) -> str:
    meta, c8 = data["meta"], data["reports"][MAIN_ARRAY]["configs"]
    out = ["| width | int8, test (golden model) | int8, validation | float, test |",
           "| --- | ---: | ---: | ---: |"]
    for c in c8:
        rec = meta.get("accuracy", {}).get(profiles.key(c["groups"]), {})
        pct = (lambda k: f"{100 * rec[k]:.2f} %" if k in rec else "–")
        out.append(f"| {_label(c)} | **{100 * c['int8_accuracy']:.2f} %** | {pct('int8_val')} | {pct('float_test')} |")
    return "\n".join(out) + "\n"


def totals_table(data) -> str:
    rpt = data["reports"][MAIN_ARRAY]
    out = ["| width | MACs | cycles | utilisation | latency (µs) | energy (nJ) | int8 accuracy |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in rpt["configs"]:
        t = c["total"]
        out.append(f"| {_label(c)} | {_n(t['macs'])} | {_n(t['cycles'])} | {t['utilization']:.3f} | "
                   f"{t['latency_us']:.1f} | {t['energy_total_pj'] / 1000:,.0f} | {100 * c['int8_accuracy']:.2f} % |")
    return "\n".join(out) + "\n"


def layers_table(data) -> str:
    out = ["| width | layer | MACs | cycles | utilisation | stall cycles | gated PE-cycles | energy (nJ) |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in data["reports"][MAIN_ARRAY]["configs"]:
        for r in c["layers"] + [c["total"]]:
            b = "**" if r is c["total"] else ""
            out.append(f"| {b}{_label(c)}{b} | {b}{r['layer']}{b} | {_n(r['macs'])} | {b}{_n(r['cycles'])}{b} | "
                       f"{r['utilization']:.3f} | {_n(r['stall_cycles'])} | {_n(r['gated_pe_cycles'])} | "
                       f"{r['energy_total_pj'] / 1000:,.1f} |")
    return "\n".join(out) + "\n"


def arrays_table(data) -> str:
    reps = data["reports"]
    head = " | ".join(f"{a} cycles | {a} util." for a in ARRAYS)
    out = [f"| width | {head} |", "| --- |" + " ---: | ---: |" * len(ARRAYS)]
    for i, c in enumerate(reps[MAIN_ARRAY]["configs"]):
        cells = " | ".join(f"{_n(reps[a]['configs'][i]['total']['cycles'])} | "
                           f"{reps[a]['configs'][i]['total']['utilization']:.3f}" for a in ARRAYS)
        out.append(f"| {_label(c)} | {cells} |")
    return "\n".join(out) + "\n"


def range_text(data) -> str:
    s = data["reports"][MAIN_ARRAY]["summary"]
    return (f"From width {s['narrow'][1:]}/4 to 4/4 on the {MAIN_ARRAY} array: cycles and latency x{s['cycle_ratio']}, "
            f"energy x{s['energy_ratio']}, accuracy +{s['accuracy_gain_points']} points.\n")


def pareto_table(data) -> str:
    """Every useful profile on the main array, by cycles, with its front flags."""
    doc = data["fronts"].get(MAIN_ARRAY)
    if not doc:
        return "(the export records no per-profile accuracy)\n"
    out = ["| profile | int8 val. | int8 test | MACs | cycles | energy (nJ) | on the front |",
           "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in sorted(doc["profiles"], key=lambda r: r["cycles"]):
        b = "**" if r["uniform"] else ""
        flags = ", ".join(k for k in pareto.COSTS if r[f"front_{k}"]) or "–"
        out.append(f"| {b}{r['profile']}{b} | {100 * r['val_accuracy']:.2f} % | {100 * r['test_accuracy']:.2f} % | "
                   f"{_n(r['macs'])} | {_n(r['cycles'])} | {r['energy_pj'] / 1000:,.0f} | {flags} |")
    return "\n".join(out) + "\n"


def versus_table(data) -> str:
    """Per array and uniform width below full: the most accurate profile (validation) with no
    more cycles, and its test accuracy against the width's."""
    if not data["fronts"]:
        return "(the export records no per-profile accuracy)\n"
    out = ["| array | uniform | its cycles | its test acc. | best profile within them | cycles | test acc. | gain |",
           "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    for a in ARRAYS:
        for v in data["fronts"][a]["versus_uniform"]:
            out.append(f"| {a} | {v['uniform']} | {_n(v['uniform_cycles'])} | {100 * v['uniform_test']:.2f} % | "
                       f"{v['best']} | {_n(v['best_cycles'])} | {100 * v['best_test']:.2f} % | "
                       f"{v['gain_points']:+.2f} |")
    return "\n".join(out) + "\n"


def runtime_table(data) -> str:
    """Every policy on every shipped trace."""
    if not data["runtime"]:
        return "(the export records no per-profile accuracy)\n"
    out = ["| trace | points | policy | deadline misses | accuracy | energy (mJ) | vs full-max | mean / worst latency (µs) "
           "| switches (width, point) |", "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, doc in data["runtime"].items():
        t, o = key.split()
        rows = {r["policy"]: r for r in doc["policies"]}
        ref = rows["full-max"]["energy_uj"]
        for r in doc["policies"]:
            b = "**" if r["policy"] == "manager" else ""
            out.append(f"| {t} | {o} | {b}{r['policy']}{b} | {r['deadline_misses_pct']:.2f} % | "
                       f"{b}{100 * r['accuracy']:.2f} %{b} | {r['energy_uj'] / 1e3:,.1f} | "
                       f"{100 * (r['energy_uj'] / ref - 1):+.1f} % | {r['mean_latency_us']:,.0f} / "
                       f"{r['worst_latency_us']:,.0f} | {r['switches']} ({r['width_switches']}, {r['opp_switches']}) |")
    return "\n".join(out) + "\n"


def manager_table(data) -> str:
    """The manager against full width at the fastest point and the oracle, per shipped trace."""
    if not data["runtime"]:
        return "(the export records no per-profile accuracy)\n"
    out = ["| trace (DVFS points) | manager: misses | accuracy | energy vs full-max | full-max: misses | accuracy "
           "| oracle: misses | accuracy |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, doc in data["runtime"].items():
        t, o = key.split()
        if o != "dvfs":
            continue
        r = {x["policy"]: x for x in doc["policies"]}
        m, f, q = r["manager"], r["full-max"], r["oracle"]
        out.append(f"| {t} | {m['deadline_misses_pct']:.2f} % | {100 * m['accuracy']:.2f} % | "
                   f"{100 * (m['energy_uj'] / f['energy_uj'] - 1):+.1f} % | {f['deadline_misses_pct']:.2f} % | "
                   f"{100 * f['accuracy']:.2f} % | {q['deadline_misses_pct']:.2f} % | {100 * q['accuracy']:.2f} % |")
    return "\n".join(out) + "\n"


def dynrange_text(data) -> str:
    if not data["runtime"]:
        return "(the export records no per-profile accuracy)\n"
    d = data["runtime"]["step dvfs"]["dynamic_range"]
    return "".join(f"- {name} points: latency x{r['latency_x']} ({r['latency_min_us']:,}-{r['latency_max_us']:,} µs), "
                   f"energy x{r['energy_x']} ({r['energy_min_nj']:,}-{r['energy_max_nj']:,} nJ)\n"
                   for name, r in d.items())


def training_table(data) -> str:
    return training.record_table(data["runs"]) if data["runs"] else "(no training record)\n"


def recipe_table(data) -> str:
    return training.record_table(data["runs"], training.HEADLINE) if data["runs"] else "(no training record)\n"


def shipped_profiles_table(data) -> str:
    return training.record_profiles_table(data["runs"], training.SHIPPED)


BLOCKS = {"training": training_table, "shipped_profiles": shipped_profiles_table, "recipe": recipe_table, "accuracy": accuracy_table, "totals": totals_table, "layers": layers_table, "arrays": arrays_table,
          "range": range_text, "pareto": pareto_table, "versus": versus_table, "runtime": runtime_table,
          "manager": manager_table, "dynrange": dynrange_text}


def _blocks(text: str, where: str) -> list[tuple[int, int, str]]:
    """(end of the begin marker, start of the end marker, name) of every result block in
    ``text``. ValueError on an unknown or unbalanced marker."""
    found, pos = [], 0
    while (i := text.find("<!-- results:", pos)) >= 0:
        j = text.find(" -->", i)
        tag = text[i + len("<!-- results:"):j]
        name, _, edge = tag.partition(":")
        if edge != "begin" or name not in BLOCKS:
            raise ValueError(f"{where}: unexpected marker <!-- results:{tag} --> (blocks: {sorted(BLOCKS)})")
        end = f"<!-- results:{name}:end -->"
        k = text.find(end, j)
        if k < 0:
            raise ValueError(f"{where}: <!-- results:{name}:begin --> has no {end}")
        found.append((j + len(" -->"), k, name))
        pos = k + len(end)
    return found


def replace_blocks(text: str, data, where: str = "README.md") -> str:
    """``text`` with every ``<!-- results:NAME:begin -->`` ... ``<!-- results:NAME:end -->`` block
    regenerated from ``data``."""
    out, pos = [], 0
    for start, end, name in _blocks(text, where):
        out += [text[pos:start], "\n", BLOCKS[name](data)]
        pos = end
    return "".join(out) + text[pos:]


def results_md(data) -> str:
    meta, rpt = data["meta"], data["reports"][MAIN_ARRAY]
    op = rpt["operating_point"]
    blocks = {name: f"<!-- results:{name}:begin -->\n{fn(data)}<!-- results:{name}:end -->"
              for name, fn in BLOCKS.items()}
    return f"""# Results (generated)

Generated by `make report` (`python -m sw.results`) from the shipped export
(`model/ref/chanscale_ref.npz`, digest `{meta['digest'][:16]}`, scheme {meta.get('scheme')}, seed
{meta.get('seed')}) and the code; `tests/test_docs.py` fails when this page differs from what
the code gives. Do not edit it by hand.

## Accuracy on the Fashion-MNIST test set

Int8 test accuracy is the bit-exact golden model's on all 10,000 test images; validation and
float accuracy are the figures the export records from its training run (5,000 held-out
training images; the test set is never used for tuning).

{blocks['accuracy']}

## Cycles, utilisation and energy per width ({MAIN_ARRAY} array, one image)

The hardware's counters, predicted exactly by the model backend (`hw/contract/schedule.py`; the
RTL equals them, `tests/test_hw_accel.py` and `sim/`). Utilisation is MACs / (cycles x N²).
Energy at the {op['name']} operating point ({op['volts']} V, {op['mhz']:g} MHz; the energy model
below), including the image load and the logits read over the bus.

{blocks['totals']}

{blocks['range']}

The same per layer (conv3 computes only the 6 x 6 outputs its floored pool keeps):

{blocks['layers']}

## Network cycles and utilisation on each array size

The 4x4 uses deeper activation and weight buffers (2,048 and 16,384 words), as its simulation
tier does; the others use the default depths.

{blocks['arrays']}
Plots (same run): [accuracy vs energy](plots/accuracy_vs_energy.png),
[accuracy vs latency](plots/accuracy_vs_latency.png), [cycles per layer](plots/cycles_per_layer.png),
[utilisation per layer](plots/utilization_per_layer.png).

## Per-layer profiles and the Pareto front

Every useful profile (each layer's active group count, non-decreasing: model/profiles.py) on the
{MAIN_ARRAY} array, one image, nominal operating point; int8 accuracy as the export records it
(the golden model on the validation split and the test set). A profile is on a front when no
other is at least as accurate on the validation split for no more cycles (or energy). Uniform
widths in bold. `python sw/host.py --pareto [--array RxC]` prints and writes the same.

{blocks['pareto']}

The uniform widths against the profiles, per array (the front depends on the array: the same
profile fills a small array better than a large one):

{blocks['versus']}

Plots: [accuracy vs cycles](plots/pareto_cycles.png), [accuracy vs energy](plots/pareto_energy.png).

## The runtime manager on budget traces

`python sw/host.py --trace NAME` (sw/runtime.py, docs/runtime.md): 10,000 frames, frame i is test
image i and counts as correct when the golden model's prediction at the chosen profile is right.
The library: uniform widths and the profiles on the {MAIN_ARRAY} array's fronts, at every
operating point of the set. Latency includes the bus transfer (four pixels per write); energy
includes it and every switch. Policies: `manager` (closed loop, sees only past latencies),
`full-max` (full width, fastest point), `dvfs` (full width, points chosen), `uniform-dvfs`,
`profiles` (nominal point only), `oracle` (knows the trace). "vs full-max": energy against it.

{blocks['runtime']}

Dynamic range over every (useful profile, operating point) pair on the {MAIN_ARRAY} array (Xun et
al. 2019 report 10.6x energy and 41.6x time with DVFS and task mapping on a big.LITTLE SoC):

{blocks['dynrange']}
Plots: {", ".join(f"[{k}](plots/trace_{k.split()[0]}{'' if k.endswith('dvfs') else '_fpga'}.png)" for k in data['runtime'])}.

## Energy model (`sw/energy.py`, the only place energies live)

Energy = sum over events of count x unit energy, the counts being the performance counters.
MACs are charged `mac` + `pe_reg`; buffer accesses `sram_32b` per 32 bits of the buffer's word;
bus bytes `offchip_32b` per 32 bits; leakage for every PE over the run's time. A gated PE costs
only leakage; this design gates every idle PE, so the ungated-idle term is 0. The counters count
the accesses the datapath uses (the portable RTL's enabled reads).

{units_table()}
Operating points scale dynamic energy with (V / {V_REF} V)² and leakage with V x time; latency is
cycles / f. They are assumptions of the model, not measurements:

{opp_table()}"""


def opp_table() -> str:
    rows = ["| point | V | MHz | note |", "| --- | ---: | ---: | --- |"]
    rows += [f"| {o.name} | {o.volts} | {o.mhz:g} | {o.doc} |" for o in OPPS.values()]
    return "\n".join(rows) + "\n"


REGISTERS_HEAD = """# Register map (generated)

Generated from `hw/contract/regmap.py`, the one declaration of every address, field and code, by
`make report` (`python -m hw.contract.regmap --markdown` prints it for another array size). The
AXI4-Lite slave's decoder, the host driver and the testbenches all read the same declaration.

"""


def outputs(data, readme: str, training_md: str) -> dict[Path, str]:
    """Every generated text file, path -> content (``readme`` and ``training_md``: the current
    README.md and docs/training.md, whose result blocks are regenerated)."""
    return {DOCS / "results.md": results_md(data),
            DOCS / "registers.md": REGISTERS_HEAD + regmap_markdown(ArrayConfig()),
            DOCS / "training.md": replace_blocks(training_md, data, "docs/training.md"),
            REPO / "README.md": replace_blocks(readme, data)}


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m sw.results", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated file is stale")
    ap.add_argument("--no-plots", action="store_true", help="skip docs/plots/")
    args = ap.parse_args(argv)
    try:
        export = load_export(DEFAULT_EXPORT)
        test = load_split("test")
        readme = (REPO / "README.md").read_text()
        training_md = (DOCS / "training.md").read_text()
        _blocks(readme, "README.md")  # a broken marker is found before the work
        _blocks(training_md, "docs/training.md")
        training.load_record()
    except (ExportError, DatasetError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    data = collect(export, test)
    files = outputs(data, readme, training_md)
    stale = [p for p, text in files.items() if not p.is_file() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"stale: {p.relative_to(REPO)} (run `make report`)")
        return 1 if stale else 0
    out = Outputs()
    for p in stale:
        out.text(p, files[p])
    if not args.no_plots:
        rep.add_outputs(out, data["reports"][MAIN_ARRAY], plot_dir=DOCS / "plots")
        if data["fronts"]:
            pareto.add_outputs(out, data["fronts"][MAIN_ARRAY], plot_dir=DOCS / "plots")
        from sw import runtime
        for key, doc in data["runtime"].items():
            for name, png in runtime.plot_pngs(doc).items():
                suffix = "" if key.endswith("dvfs") else "_fpga"
                out.files(DOCS / "plots", {name.replace(".png", f"{suffix}.png"): png})
    for p in out.commit():
        print(f"wrote {p.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
