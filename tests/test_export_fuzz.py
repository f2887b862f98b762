"""Fuzzing the export loader: random byte flips, truncations and array swaps of the shipped export
are each refused with an ExportError, or load a network identical to the original; never another
exception, never a silent difference. A fixed seed runs in `make test`; `-m slow` runs longer."""
import io
import json
import random
import zipfile

import numpy as np
import pytest

from model.export import DEFAULT_EXPORT, META_KEY, ExportError, load_export

ORIGINAL = DEFAULT_EXPORT.read_bytes()


def _same_network(a, b) -> bool:
    if json.dumps(a.meta, sort_keys=True) != json.dumps(b.meta, sort_keys=True):
        return False
    layers = lambda e: list(e.convs) + [e.heads[k] for k in sorted(e.heads)]  # noqa: E731
    return all(np.array_equal(getattr(x, f), getattr(y, f)) for x, y in zip(layers(a), layers(b))
               for f in ("weight", "bias", "M", "S"))


def _swap_arrays(data: bytes, rng: random.Random) -> bytes:
    """Two members of the archive exchange their contents (names kept)."""
    zin = zipfile.ZipFile(io.BytesIO(data))
    names = [n for n in zin.namelist() if not n.startswith(META_KEY)]
    a, b = rng.sample(names, 2)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for n in zin.namelist():
            zout.writestr(n, zin.read({a: b, b: a}.get(n, n)))
    return out.getvalue()


def _mutate(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(["flip", "flip", "truncate", "swap"])
    data = bytearray(ORIGINAL)
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return kind, bytes(data)
    if kind == "truncate":
        return kind, bytes(data[:rng.randrange(len(data))])
    return kind, _swap_arrays(bytes(data), rng)


def _fuzz(tmp_path, seed: int, cases: int):
    rng = random.Random(seed)
    original = load_export(DEFAULT_EXPORT)
    path = tmp_path / "fuzzed.npz"
    outcomes = {"refused": 0, "identical": 0}
    for i in range(cases):
        kind, data = _mutate(rng)
        path.write_bytes(data)
        try:
            ex = load_export(path)
        except ExportError:
            outcomes["refused"] += 1
            continue
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"seed {seed} case {i} ({kind}): {type(e).__name__}: {e}")
        assert _same_network(ex, original), f"seed {seed} case {i} ({kind}) loaded a different network"
        outcomes["identical"] += 1
    assert outcomes["refused"] > 0, outcomes
    return outcomes


def test_fuzz_export_loader(tmp_path):
    _fuzz(tmp_path, seed=1, cases=300)


@pytest.mark.slow
def test_fuzz_export_loader_long(tmp_path):
    _fuzz(tmp_path, seed=2, cases=20_000)
