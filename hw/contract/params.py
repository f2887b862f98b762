"""Array geometry and buffer depths: the one configuration that hw/ and sw/ both build from.

An :class:`ArrayConfig` fixes everything about the accelerator that is chosen at elaboration time:
the size of the systolic array, the depth of every on-chip buffer and the limits the sequencer
checks a layer against. The register map (:mod:`hw.contract.regmap`) is derived from it, the host reads the
same values back from the ID/GEOMETRY/DEPTH/LIMITS registers, and ``python -m hw.flow.gen`` writes it
next to the Verilog as JSON.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass, fields

__all__ = ["ArrayConfig", "parse_array", "array_from_cli", "check_sequencer_size"]

# The bus decodes a 1 MiB space: the largest window (16x16 weights, 8192 x 16 B = 128 KiB at
# 0x8_0000) still fits with room to grow, and 20 bits keep the AXI address comparators small.
ADDR_BITS = 20

_ARRAY_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
# What the command lines take (--array): the sizes the sequencer runs (check_sequencer_size);
# ArrayConfig alone takes 2..16 (the array's unit tests).
ARRAY_HELP = "array size: 4x4, 8x8 or 16x16"
_ARRAY_MSG = "array must be RxC with R == C in 2..16, e.g. 8x8"


@dataclass(frozen=True)
class ArrayConfig:
    """Geometry of the systolic array and depths of its on-chip buffers.

    All depths count words of the buffer's own width (see ``docs/design.md``, "Memories"). Values
    that appear in a read-only register must fit that register's field (for example
    ``max_kernel`` <= 15, a 4-bit field); the register map is built once here to check that.

    Raises
    ------
    ValueError
        If a value is out of range or the configuration does not fit the register map.
    """

    rows: int = 8  # array rows N: input channels (or image taps) reduced per chunk; 2..16
    cols: int = 8  # array columns: output channels per o-tile; must equal rows
    img_channels: int = 1  # image channels, bytes per pixel; 1..rows
    img_depth: int = 1024  # image buffer pixels: 28x28 = 784 fits
    act_depth: int = 1024  # words (N channels of one pixel) in each of act A and act B
    acc_depth: int = 256  # accumulator words (N int32 each): pixels in one pixel block
    wgt_depth: int = 8192  # weight words (one N-byte array row each)
    prm_depth: int = 64  # parameter entries (bias, M, S for N output channels each)
    line_depth: int = 64  # pool line buffer words: at least half the widest computed row
    # Layer descriptors (and CHAN / LAYER_CYCLES entries): 1..48, because CHAN[j] at 0x040 + 4*j
    # must end below the counters at 0x100 (the register map checks it).
    n_desc: int = 16
    max_classes: int = 16  # logits buffer depth: most classifier outputs
    max_kernel: int = 7  # largest K of a KxK kernel the sequencer accepts
    max_groups: int = 15  # largest group count G a layer may declare

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"ArrayConfig.{f.name} must be an int, got {v!r}")
        if self.rows != self.cols or not 2 <= self.rows <= 16:
            raise ValueError(f"{_ARRAY_MSG} (got rows={self.rows}, cols={self.cols})")
        if not 1 <= self.img_channels <= self.rows:
            raise ValueError(f"img_channels must be in 1..rows={self.rows}, got {self.img_channels}")
        for name in ("n_desc", "img_depth", "act_depth", "acc_depth", "wgt_depth", "prm_depth",
                     "line_depth", "max_classes", "max_kernel", "max_groups"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        # The read-only registers and the windows are derived from this configuration: building
        # the map checks that every value fits its field and that no window overlaps another.
        from .regmap import regmap
        try:
            regmap(self)
        except ValueError as e:
            raise ValueError(f"{self!r} does not fit the register map: {e}") from None

    @property
    def n(self) -> int:
        """Array size N (rows == cols)."""
        return self.rows

    @property
    def img_pack(self) -> int:
        """Image pixels per IMAGE word: as many as fit in one 32-bit bus write (4 of one channel,
        2 of two), else 1. A power of two, so a pixel's word and lane are bit fields."""
        return max(1, 4 // self.img_channels)

    @property
    def img_words(self) -> int:
        """IMAGE words (entries of the image memory): img_depth pixels, img_pack per word."""
        return -(-self.img_depth // self.img_pack)

    @property
    def addr_bits(self) -> int:
        """Width of the AXI4-Lite byte address."""
        return ADDR_BITS

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ArrayConfig":
        if not isinstance(d, dict):
            raise ValueError(f"ArrayConfig.from_dict needs a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ArrayConfig fields {unknown}; known: {sorted(known)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ArrayConfig":
        return cls.from_dict(json.loads(text))


def parse_array(text: str, **overrides) -> ArrayConfig:
    """``"8x8"`` -> ``ArrayConfig(rows=8, cols=8, **overrides)``.

    Raises
    ------
    ValueError
        ``"array must be RxC with R == C in 2..16, e.g. 8x8"`` for anything else, and
        ``check_sequencer_size``'s message for a size the sequencer does not take.
    """
    m = _ARRAY_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(_ARRAY_MSG)
    r, c = int(m.group(1)), int(m.group(2))
    if r != c or not 2 <= r <= 16:
        raise ValueError(_ARRAY_MSG)
    check_sequencer_size(r)
    return ArrayConfig(rows=r, cols=c, **overrides)


def check_sequencer_size(n: int) -> None:
    """The accelerator's sequencer takes N x N arrays with N a power of two and N >= 4 (tile
    counts are shifts; its registered next-chunk values need chunks of 4 cycles or more).

    Raises
    ------
    ValueError
        otherwise, with a message naming the sizes it takes."""
    if n & (n - 1) or n < 4:
        raise ValueError(f"the accelerator's sequencer needs a power-of-two array of at least 4x4 (4x4, 8x8 "
                         f"or 16x16), got {n}x{n}")


def array_from_cli(text: str):
    """``parse_array`` for the ``--array`` option of the hw command lines: the configuration,
    or None after printing ``error: <reason>`` to stderr (the caller exits 2)."""
    try:
        return parse_array(text)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return None
