"""Training runs side by side: the markdown tables docs/training.md shows, from the runs' own
report.json files (what `python -m model.train` writes into --out), and the shipped record of
training runs (``model/ref/runs.json``) that `make report` turns into the training tables.

    python -m model.runs build/un0 build/sp0 build/sw0 [--individual build/ind0]
    python -m model.runs build/un0 build/un1 build/sp0 build/sp1 --seeds    # mean ± spread per scheme
    python -m model.runs --record "shipped recipe" build/r0 build/r1 build/r2  # into model/ref/runs.json
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .cli import OneLineParser

RECORD = Path(__file__).resolve().parent / "ref" / "runs.json"
FIELDS = ("float_test", "int8_test", "float_val", "int8_val")
# The record's labels that the README's training table shows: the shipped recipe (whose seed 0 run
# is the shipped export) and the baseline it is measured against.
SHIPPED = "shipped: no flips, epochs 16,5,5,5"
INDEPENDENT = "independent networks, shipped recipe"
HEADLINE = (SHIPPED, INDEPENDENT)


def _load(folder: str) -> dict:
    path = Path(folder) / "report.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a model.train report ({e})") from None


def _mean_spread(values: list[float]) -> str:
    """``mean ± half the spread`` (max - min) of ``values``."""
    return f"{sum(values) / len(values):.2f} ± {(max(values) - min(values)) / 2:.2f}"


def _name(r: dict) -> str:
    return f"{r.get('subnets') or r['scheme']}, seed {r['seed']}"


def table(runs: list[dict], individual: dict | None = None) -> str:
    """Per profile (rows, by stage) the int8 test accuracy of each run (validation in brackets),
    and the individually trained dense network's where there is one."""
    keys = list(runs[0]["profiles"])
    head = " | ".join(_name(r) for r in runs) + (" | individually trained" if individual else "")
    out = [f"| profile | {head} |", "| --- |" + " ---: |" * (len(runs) + bool(individual))]
    for k in keys:
        cells = [f"{100 * r['profiles'][k]['int8_test']:.2f} ({100 * r['profiles'][k]['int8_val']:.2f})"
                 for r in runs]
        if individual:
            ind = individual["profiles"].get(k)
            cells.append(f"{100 * ind['int8_test']:.2f} ({100 * ind['int8_val']:.2f})" if ind else "–")
        bold = "**" if len(set(k.split(","))) == 1 else ""
        out.append(f"| {bold}{k}{bold} | " + " | ".join(cells) + " |")
    out.append("| training time (s) | " + " | ".join(f"{r['train_seconds']:,.0f}" for r in runs)
               + (f" | {sum(individual['train_seconds'].values()):,.0f}" if individual else "") + " |")
    return "\n".join(out) + "\n"


def seeds_table(runs: list[dict]) -> str:
    """Per profile and scheme: the int8 test accuracy's mean over the scheme's seeds and its
    spread (max - min), and the training time's mean. Schemes in their first run's order."""
    schemes: dict[str, list[dict]] = {}
    for r in runs:
        schemes.setdefault(r.get("subnets") or r["scheme"], []).append(r)
    keys = list(runs[0]["profiles"])
    head = " | ".join(f"{name} ({len(rs)} seeds)" for name, rs in schemes.items())
    out = [f"| profile | {head} |", "| --- |" + " ---: |" * len(schemes)]
    for k in keys:
        cells = []
        for rs in schemes.values():
            cells.append(_mean_spread([100 * r["profiles"][k]["int8_test"] for r in rs]))
        bold = "**" if len(set(k.split(","))) == 1 else ""
        out.append(f"| {bold}{k}{bold} | " + " | ".join(cells) + " |")
    out.append("| training time (s) | " + " | ".join(
        f"{sum(r['train_seconds'] for r in rs) / len(rs):,.0f}" for rs in schemes.values()) + " |")
    return "\n".join(out) + "\n"


def summary(report: dict, label: str) -> dict:
    """One run as the record keeps it: what it trained, how long, and every profile's accuracy
    (an independent run's widths under their uniform profile key)."""
    keep = ("scheme", "subnets", "seed", "epochs", "lr", "batch", "shift", "smoothing", "weight_decay", "flip",
            "distill", "temperature")
    seconds = report["train_seconds"]
    teacher = report.get("teacher")  # what --distill learnt from: a path, or a dict with its accuracy
    extra = {"teacher": teacher["source"] if isinstance(teacher, dict) else teacher} if teacher else {}
    return dict(label=label, **{k: report[k] for k in keep if k in report}, **extra,
                threads=report["kernels"]["threads"],
                train_seconds=round(sum(seconds.values()) if isinstance(seconds, dict) else seconds),
                profiles={k: [round(v[f], 4) for f in FIELDS] for k, v in report["profiles"].items()})


def load_record(path: Path = RECORD) -> list[dict]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a training record ({e}); restore it with git checkout") from None


def record(label: str, folders: list[str], path: Path = RECORD) -> list[dict]:
    """The record with ``folders``' runs under ``label`` (replacing that label's run of the same
    seed), written atomically."""
    new = [summary(_load(f), label) for f in folders]
    rows = [r for r in load_record(path) if (r["label"], r["seed"]) not in {(n["label"], n["seed"]) for n in new}]
    rows += new
    tmp = Path(str(path) + ".tmp")
    tmp.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")  # one run per line
    os.replace(tmp, path)
    return rows


def _uniform_keys(rows: list[dict]) -> list[str]:
    widest = max(rows, key=lambda r: len(r["profiles"]))
    return [k for k in widest["profiles"] if len(set(k.split(","))) == 1]


def record_table(rows: list[dict], labels: list[str] | None = None) -> str:
    """Per label (in the record's order, or ``labels``'): int8 test accuracy at every uniform
    width as mean ± half the spread over its seeds, the worst int8 - float difference, the mean
    training time and the runs' thread counts."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["label"], []).append(r)
    keys = _uniform_keys(rows)
    G = len(keys)
    out = ["| recipe | scheme | seeds | " + " | ".join(f"width {int(k.split(',')[0])}/{G}" for k in keys)
           + " | int8 - float (worst) | training time (s) | threads |",
           "| --- | --- | ---: |" + " ---: |" * (len(keys) + 3)]
    for label in [g for g in labels or groups if g in groups]:
        rs = groups[label]
        cells = []
        for k in keys:
            acc = [100 * r["profiles"][k][1] for r in rs if k in r["profiles"]]
            cells.append(_mean_spread(acc) if acc else "–")
        gap = min(100 * (r["profiles"][k][1] - r["profiles"][k][0]) for r in rs for k in keys if k in r["profiles"])
        scheme = rs[0].get("subnets") or rs[0]["scheme"]
        secs = sum(r["train_seconds"] for r in rs) / len(rs)
        threads = "/".join(sorted({str(r["threads"]) for r in rs}))
        out.append(f"| {label} | {scheme} | {len(rs)} | " + " | ".join(cells) + f" | {gap:+.2f} | {secs:,.0f} "
                   f"| {threads} |")
    return "\n".join(out) + "\n"


def record_profiles_table(rows: list[dict], label: str) -> str:
    """Every profile of ``label``'s runs: int8 test and validation accuracy, mean ± half the
    spread over the seeds, and float test accuracy's mean."""
    rs = [r for r in rows if r["label"] == label]
    if not rs:
        return f"(no {label!r} runs in the record)\n"
    out = [f"| profile | int8 test ({len(rs)} seeds) | int8 validation | float test |", "| --- | ---: | ---: | ---: |"]
    for k in rs[0]["profiles"]:
        cols = [[100 * r["profiles"][k][f] for r in rs] for f in (1, 3, 0)]
        cells = [_mean_spread(c) for c in cols[:2]]
        bold = "**" if len(set(k.split(","))) == 1 else ""
        out.append(f"| {bold}{k}{bold} | " + " | ".join(cells) + f" | {sum(cols[2]) / len(cols[2]):.2f} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = OneLineParser(prog="python -m model.runs", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="model.train output folders (shared-network schemes)")
    ap.add_argument("--record", metavar="LABEL", default=None,
                    help=f"add the runs to the training record {RECORD.name} under LABEL (one per seed)")
    ap.add_argument("--individual", default=None, help="a --scheme independent --profile ... output folder")
    ap.add_argument("--seeds", action="store_true",
                    help="one column per scheme: mean ± half the spread over its runs' seeds")
    args = ap.parse_args(argv)
    try:
        if args.record:
            print(record_table(record(args.record, args.runs)), end="")
            return 0
        runs = [_load(f) for f in args.runs]
        individual = _load(args.individual) if args.individual else None
        if any(r["scheme"] == "independent" for r in runs):
            raise ValueError("independent runs go after --individual")
    except (ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(seeds_table(runs) if args.seeds else table(runs, individual), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
