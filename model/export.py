"""The int8 export: one file that serves every width. NumPy only; loading never unpickles.

Format: a ``numpy.savez_compressed`` archive (``allow_pickle=False`` on load) holding

* ``__meta__``: UTF-8 JSON (as a uint8 array) with the format name and version, the group count,
  the input quantization, one entry per layer (shape, kernel, stride, padding, ReLU, pool), the
  classifier head mode, the float scales used to derive M/S, the measured accuracy per profile, and a
  SHA-256 digest of every array and every other metadata field (so a tampered or mixed-up file
  is refused);
* per split convolution ``<name>.weight`` int8 (O, I, K, K) (block lower-triangular: the blocks
  where output group g would read input group j > g are zero, and the loader checks it), ``<name>.bias`` int32 (O,),
  ``<name>.M`` int32 (O,) with 1 <= M < 2**16, ``<name>.S`` int32 (O,) with 0 <= S <= 47;
* the classifier: with ``head == "per_width"`` one set ``classifier.k<k>.{weight,bias,M,S}`` per
  active-group count k = 1..G (weight (classes, k*C/G, K, K)); with ``head == "shared"`` one set
  ``classifier.{weight,bias,M,S}`` whose first k*C/G input channels serve width k/G. Its int32
  accumulators are the logits; M/S there encode the logit scale (real logit ~ acc * M / 2**S).

The whole format, field by field, is ``docs/export-format.md``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "chanscale-export"
# 2: the digest signs every metadata field; one layer list (no training config).
# 3: ``accuracy`` is recorded per per-layer profile ("1,2,4"), not per width.
VERSION = 3
META_KEY = "__meta__"
# Shipped default, reproduced by `make train` (build/train/export.npz).
DEFAULT_EXPORT = Path(__file__).resolve().parent / "ref" / "chanscale_ref.npz"

ARRAY_DTYPES = {"weight": np.int8, "bias": np.int32, "M": np.int32, "S": np.int32}
M_MAX = (1 << 16) - 1
S_MAX = 47


class ExportError(ValueError):
    """The export file is missing, truncated, tampered with or inconsistent."""


@dataclass(frozen=True)
class Layer:
    """One layer as the accelerator runs it: a convolution plus post-processing."""

    name: str
    kind: str  # "conv" (split into channel groups) or "classifier" (int32 logits out)
    in_channels: int  # at full width
    out_channels: int
    kernel: int
    stride: int
    padding: int
    relu: bool
    pool: bool
    in_size: int  # square input feature map
    weight: np.ndarray  # int8 (O, I, K, K)
    bias: np.ndarray  # int32 (O,)
    M: np.ndarray  # int32 (O,), 1..65535
    S: np.ndarray  # int32 (O,), 0..47

    @property
    def conv_size(self) -> int:
        """Spatial size of the convolution's output (before pooling)."""
        return (self.in_size + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def out_size(self) -> int:
        return self.conv_size // 2 if self.pool else self.conv_size


@dataclass(frozen=True)
class Export:
    meta: dict
    convs: tuple[Layer, ...]
    heads: dict  # k (active input groups of the classifier) -> Layer

    @property
    def groups(self) -> int:
        return int(self.meta["groups"])

    @property
    def input_shift(self) -> int:
        return int(self.meta["input"]["shift"])

    def group_size(self, layer: int) -> int:
        return self.convs[layer].out_channels // self.groups

    def classifier(self, k: int) -> Layer:
        """The classifier that runs when the last convolution has ``k`` active groups."""
        return self.heads[k]

    def layers(self, groups) -> list[tuple[Layer, int, int]]:
        """(layer, active input channels, active output channels) for every layer at the
        per-layer active group counts ``groups`` (one entry per split convolution)."""
        out, cin = [], self.convs[0].in_channels
        for i, layer in enumerate(self.convs):
            cout = groups[i] * self.group_size(i)
            out.append((layer, cin, cout))
            cin = cout
        head = self.classifier(groups[-1])
        out.append((head, head.in_channels, head.out_channels))
        return out


    def connected_pairs(self, index: int, cin: int, cout: int) -> int:
        """(output, input) channel pairs that layer ``index`` (in ``layers()`` order) really
        reads with ``cin`` active inputs and ``cout`` active outputs: block lower-triangular for
        the inner convolutions, dense for the first one and the classifier."""
        if index == 0 or index >= len(self.convs) or self.meta["connectivity"] != "block_lower_triangular":
            return cin * cout
        layer = self.convs[index]
        gs_o, gs_i = layer.out_channels // self.groups, layer.in_channels // self.groups
        return sum(min(cin, (o // gs_o + 1) * gs_i) for o in range(cout))

    def macs(self, groups) -> list[int]:
        """Multiply-accumulates per image of every layer at per-layer ``groups``."""
        return [self.connected_pairs(i, cin, cout) * layer.kernel ** 2 * layer.conv_size ** 2
                for i, (layer, cin, cout) in enumerate(self.layers(groups))]

    def param_bytes(self, groups) -> int:
        """Bytes of the parameters one configuration reads: int8 weights of the connected blocks,
        and per output channel an int32 bias, a 16-bit M and an 8-bit S."""
        return sum(self.connected_pairs(i, cin, cout) * layer.kernel ** 2 + cout * (4 + 2 + 1)
                   for i, (layer, cin, cout) in enumerate(self.layers(groups)))


CONNECTIVITY = ("block_lower_triangular", "dense")


def _digest(arrays: dict, meta: dict) -> str:
    """SHA-256 of the metadata (every field but ``digest``, as sorted-key JSON), then of each
    array in name order: ``name|dtype|shape|`` and its bytes."""
    h = hashlib.sha256()
    h.update(json.dumps({k: v for k, v in meta.items() if k != "digest"}, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_export(path: str | os.PathLike, meta: dict, arrays: dict) -> Path:
    """Write an export atomically (a temporary file renamed into place: nothing half-written)."""
    path = Path(path)
    for name, a in arrays.items():
        field = name.rsplit(".", 1)[-1]
        if field in ARRAY_DTYPES and a.dtype != ARRAY_DTYPES[field]:
            raise ExportError(f"{name}: dtype {a.dtype}, expected {np.dtype(ARRAY_DTYPES[field])}")
    meta = dict(meta, format=FORMAT, version=VERSION)
    meta["digest"] = _digest(arrays, meta)
    payload = dict(arrays)
    payload[META_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **payload)
        load_export(tmp)  # refuse to write a file we could not read back
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an export is an ordinary data file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def update_meta(path: str | os.PathLike, **fields) -> Path:
    """Rewrite an export's metadata with ``fields`` added (arrays unchanged, digest re-checked)."""
    ex = load_export(path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != META_KEY}
    meta = {k: v for k, v in ex.meta.items() if k not in ("format", "version", "digest")}
    return save_export(path, {**meta, **fields}, arrays)


def _layer(name: str, spec: dict, arrays: dict, prefix: str, in_channels: int, out_channels: int) -> Layer:
    fields = {}
    for field, dtype in ARRAY_DTYPES.items():
        key = f"{prefix}.{field}"
        if key not in arrays:
            raise ExportError(f"export lacks the array {key!r}; re-export it with `make train`")
        a = arrays[key]
        if a.dtype != dtype:
            raise ExportError(f"{key}: dtype {a.dtype}, expected {np.dtype(dtype)}")
        fields[field] = a
    k = spec["kernel"]
    if fields["weight"].shape != (out_channels, in_channels, k, k):
        raise ExportError(f"{prefix}.weight: shape {fields['weight'].shape}, expected "
                          f"{(out_channels, in_channels, k, k)}")
    for field in ("bias", "M", "S"):
        if fields[field].shape != (out_channels,):
            raise ExportError(f"{prefix}.{field}: shape {fields[field].shape}, expected ({out_channels},)")
    if fields["M"].min() < 1 or fields["M"].max() > M_MAX:
        raise ExportError(f"{prefix}.M outside 1..{M_MAX}")
    if fields["S"].min() < 0 or fields["S"].max() > S_MAX:
        raise ExportError(f"{prefix}.S outside 0..{S_MAX}")
    return Layer(name=name, kind=spec["kind"], in_channels=in_channels, out_channels=out_channels,
                 kernel=k, stride=spec["stride"], padding=spec["padding"], relu=bool(spec["relu"]),
                 pool=bool(spec["pool"]), in_size=spec["in_size"], **fields)


def load_export(path: str | os.PathLike | None = None) -> Export:
    """Load and validate an export (default: the shipped one). Never unpickles."""
    path = Path(path) if path is not None else DEFAULT_EXPORT
    if not path.is_file():
        raise ExportError(f"export {path} not found; run `make train` or pass the path of an "
                          f"export written by `python -m model.train`")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            starts_as_zip = f.read(4) == b"PK\x03\x04"
        if starts_as_zip:  # a zip whose end (its central directory) is missing
            raise ExportError(f"export {path} is truncated or corrupt (no zip directory at its end); "
                              f"re-export it with `make train`")
        raise ExportError(f"export {path} is not a .npz (zip) archive, so not a chanscale export; "
                          f"pass the export.npz that `python -m model.train` writes")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ExportError(f"export {path} is a bare array, not a chanscale export (.npz archive)")
        with z:
            arrays = {k: z[k] for k in z.files}
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the archive's bytes break (zip, zlib, npy) is corruption
        raise ExportError(f"export {path} is truncated or corrupt ({type(e).__name__}: {e}); "
                          f"re-export it with `make train`") from e
    if META_KEY not in arrays:
        raise ExportError(f"export {path} has no {META_KEY} record; it is not a chanscale export")
    try:
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"export {path}: unreadable metadata ({e})") from e
    if not isinstance(meta, dict):
        raise ExportError(f"export {path}: metadata is not a JSON object")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ExportError(f"export {path}: format {meta.get('format')!r} v{meta.get('version')}, "
                          f"expected {FORMAT!r} v{VERSION}; re-export it with this version's `make train`")
    try:
        export = _build(path, meta, arrays)
    except ExportError:
        raise
    except (KeyError, TypeError, IndexError, ValueError, ZeroDivisionError, AttributeError) as e:
        raise ExportError(f"export {path}: inconsistent metadata ({type(e).__name__}: {e})") from e
    # last, so a structural fault is named; a file that passes both is the one that was signed
    if meta.get("digest") != _digest(arrays, meta):
        raise ExportError(f"export {path}: contents do not match the recorded digest (tampered or "
                          f"mixed up); re-export it with `make train`")
    return export


def _int(path, field: str, value, lo: int, hi: int | None = None) -> int:
    """``value`` if it is an int in ``lo..hi``; else ExportError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ExportError(f"export {path}: {field} must be an integer {bound}, got {value!r}")
    return value


def _check_spec(path, i: int, spec: dict, in_size: int) -> None:
    """Layer ``i``'s metadata: field types and ranges, and its input size ``in_size`` (the
    previous layer's output)."""
    if not isinstance(spec, dict):
        raise ExportError(f"export {path}: layers[{i}] is not an object")
    where = f"layers[{i}] ({spec.get('name', '?')})"
    if not isinstance(spec.get("name"), str) or not spec["name"]:
        raise ExportError(f"export {path}: {where}.name must be a non-empty string")
    k = _int(path, f"{where}.kernel", spec.get("kernel"), 1)
    _int(path, f"{where}.stride", spec.get("stride"), 1)
    _int(path, f"{where}.padding", spec.get("padding"), 0, k - 1)
    _int(path, f"{where}.out_channels", spec.get("out_channels"), 1)
    for flag in ("relu", "pool"):
        if not isinstance(spec.get(flag), bool):
            raise ExportError(f"export {path}: {where}.{flag} must be true or false, got {spec.get(flag)!r}")
    if spec.get("in_size") != in_size:
        raise ExportError(f"export {path}: {where}.in_size is {spec.get('in_size')!r}, but the layer before "
                          f"gives {in_size}")
    if in_size + 2 * spec["padding"] < k:
        raise ExportError(f"export {path}: {where}: a {k}x{k} kernel does not fit the {in_size}x{in_size} input")


def _check_connectivity(path, layer: Layer, G: int) -> None:
    """Block lower-triangular: output group g reads input groups 0..g, so every block (g, j > g)
    of the weights must be zero (the accelerator never reads it; the golden model would)."""
    gs_o, gs_i = layer.out_channels // G, layer.in_channels // G
    for g in range(G):
        block = layer.weight[g * gs_o:(g + 1) * gs_o, (g + 1) * gs_i:]
        if block.any():
            j = (g + 1) + int(np.argwhere(block)[0][1]) // gs_i
            raise ExportError(f"export {path}: {layer.name}.weight has nonzero weights where output group {g} "
                              f"would read input group {j}, which block lower-triangular connectivity "
                              f"forbids (output group g reads input groups 0..g)")


def _build(path: Path, meta: dict, arrays: dict) -> Export:
    G = _int(path, "groups", meta.get("groups"), 1)
    specs = meta["layers"]
    if meta.get("connectivity") not in CONNECTIVITY:
        raise ExportError(f"export {path}: connectivity must be one of {list(CONNECTIVITY)}, "
                          f"got {meta.get('connectivity')!r}")
    inp = meta["input"]
    cin = _int(path, "input.channels", inp.get("channels"), 1)
    size = _int(path, "input.size", inp.get("size"), 1)
    _int(path, "input.shift", inp.get("shift"), 0, 7)
    if not isinstance(specs, list) or len(specs) < 2:
        raise ExportError(f"export {path}: needs at least one convolution and the classifier")
    convs = []
    for i, spec in enumerate(specs[:-1]):
        _check_spec(path, i, spec, size)
        cout = spec["out_channels"]
        if spec.get("kind") != "conv" or cout % G:
            raise ExportError(f"export {path}: layer {spec['name']} is not a conv split into {G} groups")
        convs.append(_layer(spec["name"], spec, arrays, spec["name"], cin, cout))
        if i > 0 and meta["connectivity"] == "block_lower_triangular":
            _check_connectivity(path, convs[-1], G)
        cin, size = cout, convs[-1].out_size
    spec = specs[-1]
    _check_spec(path, len(specs) - 1, spec, size)
    if spec.get("kind") != "classifier":
        raise ExportError(f"export {path}: the last layer must be the classifier")
    if spec["kernel"] != size or spec["padding"] != 0 or spec["pool"]:
        raise ExportError(f"export {path}: the classifier must be a {size}x{size} 'valid' convolution to 1x1 "
                          f"(kernel {size}, padding 0, no pool)")
    gs = convs[-1].out_channels // G
    classes = int(spec["out_channels"])
    heads = {}
    if meta["head"] == "per_width":
        for k in range(1, G + 1):
            heads[k] = _layer(spec["name"], spec, arrays, f"{spec['name']}.k{k}", k * gs, classes)
    elif meta["head"] == "shared":
        full = _layer(spec["name"], spec, arrays, spec["name"], G * gs, classes)
        for k in range(1, G + 1):
            heads[k] = Layer(**{**full.__dict__, "in_channels": k * gs,
                                "weight": full.weight[:, :k * gs]})
    else:
        raise ExportError(f"export {path}: unknown head mode {meta['head']!r}")
    _check_accuracy(path, meta.get("accuracy", {}), G, len(convs))
    unknown = set(arrays) - {f"{p}.{f}" for p in _prefixes(specs, meta["head"], G) for f in ARRAY_DTYPES}
    if unknown:
        raise ExportError(f"export {path}: unexpected arrays {sorted(unknown)}")
    return Export(meta=meta, convs=tuple(convs), heads=heads)


def _check_accuracy(path, acc, G: int, n: int) -> None:
    """``accuracy``: {profile "k1,..,kn": {field: fraction in 0..1}} (docs/export-format.md)."""
    if not isinstance(acc, dict):
        raise ExportError(f"export {path}: accuracy must be an object keyed by profile such as \"1,2,4\"")
    for key, rec in acc.items():
        parts = key.split(",") if isinstance(key, str) else []
        if len(parts) != n or not all(p.isdigit() and 1 <= int(p) <= G for p in parts):
            raise ExportError(f"export {path}: accuracy key {key!r} is not a profile of {n} counts in 1..{G}")
        if not isinstance(rec, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in rec.values()):
            raise ExportError(f"export {path}: accuracy[{key!r}] must map names to fractions in 0..1")


def _prefixes(specs, head, G):
    names = [s["name"] for s in specs[:-1]]
    cls = specs[-1]["name"]
    return names + ([f"{cls}.k{k}" for k in range(1, G + 1)] if head == "per_width" else [cls])
