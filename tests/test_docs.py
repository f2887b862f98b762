"""The generated docs equal what the code gives: docs/results.md, docs/registers.md and the
README's result blocks (`make report` rewrites them), and no link in the docs points nowhere."""
import re
from pathlib import Path

import pytest

from model.data import load_split
from model.export import load_export
from sw import results

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data():
    return results.collect(load_export(), load_split("test"))


def test_generated_docs_are_current(data):
    files = results.outputs(data, (REPO / "README.md").read_text(), (REPO / "docs/training.md").read_text())
    for path, text in files.items():
        assert path.read_text() == text, f"{path.relative_to(REPO)} is stale: run `make report`"


def test_readme_has_every_result_block():
    names = {name for _, _, name in results._blocks((REPO / "README.md").read_text(), "README.md")}
    assert {"accuracy", "totals", "range"} <= names, names


def test_headline_numbers_come_from_the_measurement(data):
    # Independent of the renderer: the 8x8 network cycles of every width appear in the README.
    readme = (REPO / "README.md").read_text()
    for c in data["reports"]["8x8"]["configs"]:
        assert f"{c['total']['cycles']:,}" in readme, c["name"]
        assert f"{100 * c['int8_accuracy']:.2f} %" in readme, c["name"]


def test_manager_numbers_come_from_the_run(data):
    # The README's runtime table holds each trace's manager accuracy and misses as measured.
    readme = (REPO / "README.md").read_text()
    for key, doc in data["runtime"].items():
        if key.endswith("dvfs"):
            m = next(r for r in doc["policies"] if r["policy"] == "manager")
            row = next(ln for ln in readme.splitlines() if ln.startswith(f"| {key.split()[0]} |"))
            assert f"{100 * m['accuracy']:.2f} %" in row and f"{m['deadline_misses_pct']:.2f} %" in row, row


def test_bad_markers_are_refused():
    with pytest.raises(ValueError, match="no <!-- results:totals:end -->"):
        results._blocks("<!-- results:totals:begin -->\n", "x")
    with pytest.raises(ValueError, match="unexpected marker"):
        results._blocks("<!-- results:nope:begin --><!-- results:nope:end -->", "x")


def test_relative_links_resolve():
    for md in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "sim" / "README.md"]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", md.read_text()):
            assert (md.parent / target).exists(), f"{md.relative_to(REPO)} links to missing {target}"


def test_repository_refers_to_nothing_outside_it():
    import subprocess
    outside = "../" + "shared"  # the steering folder next to a checkout, which users do not have
    hits = subprocess.run(["git", "grep", "-n", "-F", "-e", outside, "--", "."], cwd=REPO,
                          capture_output=True, text=True).stdout
    assert hits == "", hits
