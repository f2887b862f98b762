"""The chanscale register map, declared once: hw/ builds the bus from it, sw/ drives it with it.

Nothing else in the project writes an address, a bit position or an error code as a number:
the AXI4-Lite slave (:mod:`hw.gateware.axil`) generates its decoder from :func:`regmap`, the host driver
looks offsets and fields up here, and docs/registers.md is :func:`markdown`'s output
(``python -m hw.contract.regmap --markdown --array 8x8``).

The declaration style follows amaranth-soc's ``csr.reg`` (registers as objects with typed fields
and a doc per field), without depending on it. Three kinds of objects:

* :class:`Field` -- a bit range of a 32-bit register with an access mode:
  ``"rw"`` (stored, reads back), ``"ro"`` (writes ignored) or ``"w1"`` (writing 1 makes a
  one-cycle pulse, reads 0).
* :class:`Register` -- a 32-bit word (or an array of ``count`` words, element ``j`` at
  ``offset + j * stride``) made of fields.
* :class:`Window` -- a memory visible on the bus: entry ``e``, byte ``b`` at
  ``base + e * stride + b``; accessible only while the accelerator is idle (SLVERR while busy).

Layer descriptors (8 words each, ``DESC_W0`` .. ``DESC_W7``) have their own field table,
:data:`DESC_FIELDS`, and :func:`encode_descriptor` / :func:`decode_descriptor`.
"""
from __future__ import annotations

import functools
import operator
import sys
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING
from model.cli import OneLineParser

if TYPE_CHECKING:  # params imports this module lazily to validate a config against the map
    from .params import ArrayConfig

__all__ = [
    "ACCESS", "Field", "Register", "Window", "RegMap", "regmap",
    "Error", "ERROR_CODES", "ERROR_DOCS", "Kind", "Src", "Dst", "Resp",
    "ID_VALUE", "COUNTERS", "COUNTER_BASE", "BUFFERS", "counter_offset",
    "DESC_WORDS", "DESC_FIELDS", "DESC_BASE", "DESC_STRIDE", "desc_field",
    "encode_descriptor", "decode_descriptor", "descriptor_layout", "register_layout",
    "markdown",
]

ACCESS = ("rw", "ro", "w1")
WINDOW_ACCESS = ("rw", "ro")
ID_VALUE = 0x43534331  # "CSC1" in ASCII, most significant byte first


# --------------------------------------------------------------------------------------------
# Codes


class Error(IntEnum):
    """``STATUS.ERROR_CODE`` values."""

    NONE = 0
    BAD_GROUPS = 1
    BAD_SHAPE = 2
    BAD_DESCRIPTOR = 3
    ABORTED = 4


ERROR_CODES = Error

ERROR_DOCS = {
    Error.NONE: "no error",
    Error.BAD_GROUPS: "zero or more than G active groups, or a layer's active input groups differ "
                      "from its producer's active output groups",
    Error.BAD_SHAPE: "a layer does not fit the array, the buffers or the kernel limit",
    Error.BAD_DESCRIPTOR: "unknown kind, bad source/destination, or an empty or out-of-range "
                          "layer range (FIRST_LAYER, NUM_LAYERS)",
    Error.ABORTED: "CTRL.ABORT stopped the sequencer",
}


class Kind(IntEnum):
    """``DESC_W0.KIND``: what a descriptor computes."""

    INVALID = 0
    CONV = 1
    CLASSIFIER = 2


class Src(IntEnum):
    """``DESC_W0.SRC``: which buffer a layer reads."""

    IMAGE = 0
    ACT_A = 1
    ACT_B = 2


class Dst(IntEnum):
    """``DESC_W0.DST``: which buffer a layer writes."""

    ACT_A = 1
    ACT_B = 2
    LOGITS = 3


# An activation buffer has one code as a source and as a destination (the ping-pong swaps them).
BUF_A, BUF_B = Src.ACT_A, Src.ACT_B
assert (Dst.ACT_A, Dst.ACT_B) == (BUF_A, BUF_B)


class Resp(IntEnum):
    """AXI response codes the control bus returns."""

    OKAY = 0
    SLVERR = 2  # window access while the accelerator is busy
    DECERR = 3  # no register or window at this address


# --------------------------------------------------------------------------------------------
# Declarations


@dataclass(frozen=True)
class Field:
    """A bit range ``[lsb + width - 1 : lsb]`` of a 32-bit register.

    Parameters
    ----------
    name : str
        Upper-case identifier, unique within its register.
    lsb, width : int
        Position and size; the field must lie within bits 0..31.
    access : str
        ``"rw"``, ``"ro"`` or ``"w1"`` (write 1 to pulse for one cycle; reads 0).
    reset : int
        Value after reset (for ``"ro"`` fields with a constant source: the constant).
    doc : str
        One line for the register table.
    """

    name: str
    lsb: int
    width: int
    access: str
    reset: int = 0
    doc: str = ""

    def __post_init__(self):
        if not (isinstance(self.name, str) and self.name.isidentifier() and self.name.isupper()):
            raise ValueError(f"field name must be an upper-case identifier, got {self.name!r}")
        if not (isinstance(self.lsb, int) and isinstance(self.width, int)
                and self.lsb >= 0 and self.width >= 1 and self.lsb + self.width <= 32):
            raise ValueError(f"{self.name}: bits [{self.lsb}+{self.width}) do not fit 32 bits")
        if self.access not in ACCESS:
            raise ValueError(f"{self.name}: access must be one of {ACCESS}, got {self.access!r}")
        if not (isinstance(self.reset, int) and 0 <= self.reset < (1 << self.width)):
            raise ValueError(f"{self.name}: reset {self.reset!r} does not fit in {self.width} bits")

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1

    @property
    def mask(self) -> int:
        """The field's bits in the 32-bit word."""
        return ((1 << self.width) - 1) << self.lsb

    @property
    def bits(self) -> str:
        """``"[15:8]"`` or ``"[6]"``."""
        return f"[{self.msb}:{self.lsb}]" if self.width > 1 else f"[{self.lsb}]"

    def get(self, word: int) -> int:
        """This field's value in ``word``."""
        return (word >> self.lsb) & ((1 << self.width) - 1)

    def put(self, value: int, word: int = 0) -> int:
        """``word`` with this field set to ``value`` (ValueError if it does not fit)."""
        value = _as_int(value, self.name)
        if not 0 <= value < (1 << self.width):
            raise ValueError(f"{self.name}={value} does not fit in {self.width} bits "
                             f"(0..{(1 << self.width) - 1})")
        return (word & ~self.mask) | (value << self.lsb)


@dataclass(frozen=True)
class Register:
    """A 32-bit register, or an array of ``count`` of them (element ``j`` at ``offset + j*stride``).

    Parameters
    ----------
    name : str
        Upper-case identifier, unique in the map.
    offset : int
        Byte offset of element 0; a multiple of 4.
    fields : tuple of Field
        Non-overlapping; bits not covered read 0 and ignore writes.
    doc : str
        One line for the register table.
    count, stride : int
        Number of elements and the distance between them in bytes (a multiple of 4).
    """

    name: str
    offset: int
    fields: tuple
    doc: str
    count: int = 1
    stride: int = 4

    def __post_init__(self):
        object.__setattr__(self, "fields", tuple(self.fields))
        if not (isinstance(self.name, str) and self.name.isidentifier() and self.name.isupper()):
            raise ValueError(f"register name must be an upper-case identifier, got {self.name!r}")
        if self.offset < 0 or self.offset % 4:
            raise ValueError(f"{self.name}: offset {self.offset:#x} is not a multiple of 4")
        if self.count < 1 or self.stride < 4 or self.stride % 4:
            raise ValueError(f"{self.name}: need count >= 1 and a stride that is a multiple of 4")
        if not self.fields:
            raise ValueError(f"{self.name}: a register needs at least one field")
        used = 0
        names = set()
        for f in self.fields:
            if not isinstance(f, Field):
                raise ValueError(f"{self.name}: fields must be Field objects, got {f!r}")
            if f.name in names:
                raise ValueError(f"{self.name}: duplicate field {f.name}")
            if used & f.mask:
                raise ValueError(f"{self.name}: field {f.name} overlaps another field")
            used |= f.mask
            names.add(f.name)

    @property
    def reset(self) -> int:
        """The word read after reset (live read-only fields read 0 when their source is 0)."""
        return functools.reduce(operator.or_, (f.reset << f.lsb for f in self.fields
                                               if f.access != "w1"), 0)

    @property
    def access(self) -> str:
        """The fields' common access mode, or ``"mixed"``."""
        modes = {f.access for f in self.fields}
        return modes.pop() if len(modes) == 1 else "mixed"

    @property
    def mask(self) -> int:
        """Bits covered by fields."""
        return functools.reduce(operator.or_, (f.mask for f in self.fields), 0)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}; fields: "
                       f"{[f.name for f in self.fields]}")

    def offset_of(self, j: int = 0) -> int:
        """Byte offset of element ``j``."""
        if not (isinstance(j, int) and 0 <= j < self.count):
            raise IndexError(f"{self.name}[{j}]: index out of range 0..{self.count - 1}")
        return self.offset + j * self.stride

    @property
    def offsets(self) -> list[int]:
        return [self.offset + j * self.stride for j in range(self.count)]

    def encode(self, values: dict) -> int:
        """A word from ``{field name (any case): value}``; missing fields are 0."""
        word = 0
        for k, v in values.items():
            word = self.field(k.upper()).put(v, word)
        return word

    def decode(self, word: int) -> dict:
        """``{FIELD: value}`` of a word."""
        return {f.name: f.get(word) for f in self.fields}


@dataclass(frozen=True)
class Window:
    """A memory on the bus: entry ``e``, byte ``b`` at ``base + e * stride + b``.

    A 32-bit access at byte offset ``b`` of an entry (``b`` a multiple of 4) touches bytes
    ``[b, b + 4)`` of the entry, clipped to ``word_bytes``; bytes past ``word_bytes`` read 0 and
    ignore writes. Only while the accelerator is idle; SLVERR while it is busy.
    """

    name: str
    base: int
    word_bytes: int
    depth: int
    access: str
    doc: str

    def __post_init__(self):
        if self.access not in WINDOW_ACCESS:
            raise ValueError(f"{self.name}: window access must be one of {WINDOW_ACCESS}")
        if self.word_bytes < 1 or self.depth < 1:
            raise ValueError(f"{self.name}: word_bytes and depth must be >= 1")
        if self.base % self.stride:
            raise ValueError(f"{self.name}: base {self.base:#x} is not a multiple of the entry "
                             f"stride {self.stride}")

    @property
    def stride(self) -> int:
        """Bytes between entries: the next power of two >= word_bytes, at least 4."""
        return max(4, 1 << (self.word_bytes - 1).bit_length())

    @property
    def size(self) -> int:
        return self.depth * self.stride

    @property
    def end(self) -> int:
        return self.base + self.size

    def address(self, entry: int, byte: int = 0) -> int:
        if not (0 <= entry < self.depth and 0 <= byte < self.stride):
            raise IndexError(f"{self.name}: entry {entry} byte {byte} out of range "
                             f"(depth {self.depth}, stride {self.stride})")
        return self.base + entry * self.stride + byte


# --------------------------------------------------------------------------------------------
# Counters

COUNTER_BASE = 0x100
BUFFERS = ("IMG", "ACTA", "ACTB", "WGT", "PRM", "ACC", "LINE", "LOGIT")
_COUNTER_DOCS = {
    "CYCLES": "clock cycles since the last CLEAR_COUNTERS",
    "BUSY_CYCLES": "cycles with STATUS.BUSY set",
    "MACS": "active PE-cycles: multiply-accumulates done",
    "GATED_PE_CYCLES": "PE-cycles of gated (inactive-group) PEs while busy",
    "STALL_CYCLES": "busy cycles in which no pixel entered the array",
    "BUS_RD_BYTES": "bytes read over the AXI4-Lite bus",
    "BUS_WR_BYTES": "bytes written over the AXI4-Lite bus (sum of WSTRB bits)",
}
for _b in BUFFERS:
    _COUNTER_DOCS[f"{_b}_RD"] = f"{_b} buffer word reads"
    _COUNTER_DOCS[f"{_b}_WR"] = f"{_b} buffer word writes"
COUNTERS: tuple[str, ...] = tuple(_COUNTER_DOCS)  # bus order: counter k at COUNTER_BASE + 8*k


def counter_offset(name: str) -> int:
    """Byte offset of the low word of a 64-bit counter (the high word is at +4)."""
    try:
        return COUNTER_BASE + 8 * COUNTERS.index(name)
    except ValueError:
        raise KeyError(f"unknown counter {name!r}; counters: {list(COUNTERS)}") from None


# --------------------------------------------------------------------------------------------
# Layer descriptors

DESC_BASE = 0x400
DESC_WORDS = 8
DESC_STRIDE = 4 * DESC_WORDS  # descriptor j word i at DESC_BASE + DESC_STRIDE*j + 4*i


def _rw(name, lsb, width, doc):
    return Field(name, lsb, width, "rw", doc=doc)


DESC_FIELDS: tuple[tuple[Field, ...], ...] = (
    (_rw("KIND", 0, 2, "0 invalid, 1 conv, 2 classifier (raw int32 logits)"),
     _rw("SRC", 2, 2, "source: 0 image, 1 act A, 2 act B"),
     _rw("DST", 4, 2, "destination: 1 act A, 2 act B, 3 logits"),
     _rw("RELU", 6, 1, "ReLU after requantization"),
     _rw("POOL", 7, 1, "2x2/stride-2 max-pool after ReLU and saturation"),
     _rw("TRIANGULAR", 8, 1, "block lower-triangular: output group g reads input groups 0..g"),
     _rw("SELECT_K", 12, 4, "0 = always run; k = run only when the active input groups == k")),
    (_rw("CIN", 0, 16, "input channels at full width"),
     _rw("COUT", 16, 16, "output channels at full width")),
    (_rw("H", 0, 16, "input height"),
     _rw("W", 16, 16, "input width")),
    (_rw("KERNEL", 0, 8, "K of the KxK kernel"),
     _rw("STRIDE", 8, 8, "convolution stride"),
     _rw("PAD", 16, 8, "zero padding on every side"),
     _rw("GROUPS", 24, 8, "channel groups G of this layer")),
    (_rw("W_BASE", 0, 32, "first weight-memory word"),),
    (_rw("P_BASE", 0, 32, "first parameter entry"),),
    (_rw("SRC_BASE", 0, 32, "first source activation word"),),
    (_rw("DST_BASE", 0, 32, "first destination activation word"),),
)
assert len(DESC_FIELDS) == DESC_WORDS
_DESC_INDEX = {f.name.lower(): (i, f) for i, word in enumerate(DESC_FIELDS) for f in word}


def desc_field(name: str) -> tuple[int, Field]:
    """``(word index, Field)`` of a descriptor field (name in any case)."""
    try:
        return _DESC_INDEX[name.lower()]
    except KeyError:
        raise KeyError(f"unknown descriptor field {name!r}; fields: {list(_DESC_INDEX)}") from None


def _as_int(value, what: str) -> int:
    try:
        return operator.index(value)  # int, bool, numpy integers; not floats or strings
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {value!r}") from None


def encode_descriptor(desc: dict) -> list[int]:
    """The 8 words of a layer descriptor from ``{field name (lower case): value}``.

    Missing fields are 0. Only bit ranges are checked here; whether a descriptor makes sense
    (kind, source, shapes) is checked by the sequencer, which reports ``Error.BAD_*``.

    Raises
    ------
    ValueError
        On an unknown field name, a non-integer or a value that does not fit its field.
    """
    if not isinstance(desc, dict):
        raise ValueError(f"a descriptor is a dict of fields, got {type(desc).__name__}")
    words = [0] * DESC_WORDS
    for k, v in desc.items():
        if not isinstance(k, str) or k not in _DESC_INDEX:
            raise ValueError(f"unknown descriptor field {k!r}; fields: {list(_DESC_INDEX)}")
        i, f = _DESC_INDEX[k]
        words[i] = f.put(v, words[i])
    return words


def decode_descriptor(words) -> dict:
    """``{field name (lower case): value}`` of 8 descriptor words (reserved bits ignored).

    Raises
    ------
    ValueError
        Unless ``words`` is 8 integers in ``0 .. 2**32 - 1``.
    """
    words = list(words)
    if len(words) != DESC_WORDS:
        raise ValueError(f"a descriptor has {DESC_WORDS} words, got {len(words)}")
    for i, w in enumerate(words):
        w = _as_int(w, f"descriptor word {i}")
        if not 0 <= w < (1 << 32):
            raise ValueError(f"descriptor word {i} = {w} is not a 32-bit unsigned value")
        words[i] = w
    return {name: f.get(words[i]) for name, (i, f) in _DESC_INDEX.items()}


def descriptor_layout():
    """An ``amaranth.lib.data`` layout of the 256-bit descriptor (word ``i`` at bits ``32*i``).

    ``data.View(descriptor_layout(), bus.desc[j].as_value())`` gives named fields
    (``.kind``, ``.cin``, ``.w_base``, ...) to the sequencer.
    """
    from amaranth.hdl import unsigned
    from amaranth.lib import data
    return data.FlexibleLayout(32 * DESC_WORDS, {
        name: data.Field(unsigned(f.width), 32 * i + f.lsb) for name, (i, f) in _DESC_INDEX.items()})


def register_layout(reg: Register):
    """An ``amaranth.lib.data`` layout of one register element: its fields, lower-case names."""
    from amaranth.hdl import unsigned
    from amaranth.lib import data
    size = max(f.msb for f in reg.fields) + 1
    return data.FlexibleLayout(size, {
        f.name.lower(): data.Field(unsigned(f.width), f.lsb) for f in reg.fields})


# --------------------------------------------------------------------------------------------
# The map


class RegMap:
    """The register map of one :class:`~hw.contract.params.ArrayConfig` (build it with :func:`regmap`).

    Attributes
    ----------
    cfg : ArrayConfig
    registers : tuple of Register
        In address order of their first element.
    windows : tuple of Window
    """

    def __init__(self, cfg, registers, windows):
        self.cfg = cfg
        self.registers = tuple(registers)
        self.windows = tuple(windows)
        self._regs = {r.name: r for r in self.registers}
        self._wins = {w.name: w for w in self.windows}
        if len(self._regs) != len(self.registers) or len(self._wins) != len(self.windows):
            raise ValueError("register and window names must be unique")
        if set(self._regs) & set(self._wins):
            raise ValueError(f"names used twice: {sorted(set(self._regs) & set(self._wins))}")

    def reg(self, name: str) -> Register:
        try:
            return self._regs[name]
        except KeyError:
            raise KeyError(f"no register {name!r}") from None

    def window(self, name: str) -> Window:
        try:
            return self._wins[name]
        except KeyError:
            raise KeyError(f"no window {name!r}") from None

    def offset(self, name: str, j: int = 0) -> int:
        """Byte offset of register ``name`` element ``j``."""
        return self.reg(name).offset_of(j)

    def field(self, reg: str, name: str) -> Field:
        return self.reg(reg).field(name)

    def desc_offset(self, j: int, word: int = 0) -> int:
        """Byte offset of descriptor ``j`` word ``word``."""
        return self.offset(f"DESC_W{word}", j)

    @staticmethod
    def counter_offset(name: str) -> int:
        return counter_offset(name)

    def lookup(self, addr: int):
        """What the bus finds at byte address ``addr`` (aligned down to 4).

        Returns ``("reg", Register, j)``, ``("window", Window, entry, byte)`` or ``None``.
        """
        addr &= ~3
        for r in self.registers:
            if r.offset <= addr < r.offset + r.count * r.stride and (addr - r.offset) % r.stride == 0:
                return ("reg", r, (addr - r.offset) // r.stride)
        for w in self.windows:
            if w.base <= addr < w.end:
                return ("window", w, (addr - w.base) // w.stride, (addr - w.base) % w.stride)
        return None

    def check(self) -> None:
        """ValueError unless no two registers/windows overlap and all fit ``2**addr_bits`` bytes."""
        limit = 1 << self.cfg.addr_bits
        spans = []  # (start, end, what)
        for r in self.registers:
            for j, off in enumerate(r.offsets):
                spans.append((off, off + 4, r.name if r.count == 1 else f"{r.name}[{j}]"))
        for w in self.windows:
            spans.append((w.base, w.end, f"window {w.name}"))
        spans.sort()
        for (s0, e0, n0), (s1, e1, n1) in zip(spans, spans[1:]):
            if s1 < e0:
                raise ValueError(f"{n1} at {s1:#x} overlaps {n0} [{s0:#x}, {e0:#x})")
        if spans and spans[-1][1] > limit:
            raise ValueError(f"{spans[-1][2]} ends at {spans[-1][1]:#x}, beyond the "
                             f"{self.cfg.addr_bits}-bit address space ({limit:#x})")


@functools.lru_cache(maxsize=64)
def regmap(cfg: "ArrayConfig") -> RegMap:
    """The register map of ``cfg`` (checked: ValueError on overlap or overflow)."""
    n = cfg.n

    def ro(name, lsb, width, reset=0, doc=""):
        return Field(name, lsb, width, "ro", reset, doc)

    def one(name, access, width=32, reset=0, doc=""):  # single-field register: field = register
        return (Field(name, 0, width, access, reset, doc),)

    regs = [
        Register("ID", 0x000, one("ID", "ro", reset=ID_VALUE), "identification, 'CSC1'"),
        Register("GEOMETRY", 0x004, (
            ro("ROWS", 0, 8, cfg.rows, "array rows N"),
            ro("COLS", 8, 8, cfg.cols, "array columns"),
            ro("IMG_CHANNELS", 16, 8, cfg.img_channels, "image channels (bytes per image word)"),
            ro("N_DESC", 24, 8, cfg.n_desc, "layer descriptors")), "array geometry"),
        Register("DEPTH_ACT", 0x008, one("DEPTH_ACT", "ro", reset=cfg.act_depth),
                 "words in each activation buffer"),
        Register("DEPTH_WGT", 0x00C, one("DEPTH_WGT", "ro", reset=cfg.wgt_depth),
                 "weight buffer words"),
        Register("DEPTH_ACC", 0x010, one("DEPTH_ACC", "ro", reset=cfg.acc_depth),
                 "accumulator words"),
        Register("DEPTH_PRM", 0x014, one("DEPTH_PRM", "ro", reset=cfg.prm_depth),
                 "parameter entries"),
        Register("DEPTH_IMG", 0x018, one("DEPTH_IMG", "ro", reset=cfg.img_depth),
                 "image buffer pixels"),
        Register("LIMITS", 0x01C, (
            ro("LINE_DEPTH", 0, 16, cfg.line_depth, "pool line buffer words"),
            ro("MAX_CLASSES", 16, 8, cfg.max_classes, "logits buffer depth"),
            ro("MAX_KERNEL", 24, 4, cfg.max_kernel, "largest kernel K"),
            ro("MAX_GROUPS", 28, 4, cfg.max_groups, "largest group count G")), "sequencer limits"),
        Register("CTRL", 0x020, (
            Field("START", 0, 1, "w1", doc="run descriptors FIRST_LAYER .. +NUM_LAYERS-1"),
            Field("ABORT", 1, 1, "w1", doc="stop a running sequencer at once; sets error ABORTED (ignored while idle)"),
            Field("CLEAR_COUNTERS", 2, 1, "w1", doc="zero every performance counter")),
            "control pulses (write 1; read 0)"),
        Register("STATUS", 0x024, (
            ro("BUSY", 0, 1, doc="sequencer running"),
            ro("DONE", 1, 1, doc="the last run has ended (also after an error: see ERROR)"),
            ro("ERROR", 2, 1, doc="last run stopped with an error"),
            ro("ERROR_CODE", 8, 4, doc="see the error codes"),
            ro("LAYER", 16, 8, doc="descriptor running, the one that failed, or FIRST+NUM after a good run")), "status"),
        Register("FIRST_LAYER", 0x028, one("FIRST_LAYER", "rw", 8), "first descriptor to run"),
        Register("NUM_LAYERS", 0x02C, one("NUM_LAYERS", "rw", 8), "descriptors to run"),
        Register("WIDTH", 0x030, one("WIDTH", "rw", 8),
                 "0 = per-layer groups from CHAN; k > 0 = every split layer runs k groups"),
        Register("CHAN", 0x040, (
            Field("OUT_GROUPS", 0, 8, "rw", doc="active output groups of descriptor j"),
            Field("IN_GROUPS", 8, 8, "rw", doc="active input groups of descriptor j")),
            "channel-count register of descriptor j", count=cfg.n_desc),
    ]
    for name, doc in _COUNTER_DOCS.items():
        off = counter_offset(name)
        regs.append(Register(f"{name}_LO", off, one(f"{name}_LO", "ro"), f"{doc} (bits 31:0)"))
        regs.append(Register(f"{name}_HI", off + 4, one(f"{name}_HI", "ro"), f"{doc} (bits 63:32)"))
    regs.append(Register("LAYER_CYCLES", 0x200, one("LAYER_CYCLES", "ro"),
                         "cycles of descriptor j in the last run", count=cfg.n_desc))
    for i, word in enumerate(DESC_FIELDS):
        regs.append(Register(f"DESC_W{i}", DESC_BASE + 4 * i, word,
                             f"layer descriptor j, word {i}", count=cfg.n_desc, stride=DESC_STRIDE))

    windows = [
        Window("LOGITS", 0x0_8000, 4, cfg.max_classes, "ro",
               "classifier outputs: raw int32 accumulators, one per class"),
        Window("PARAMS", 0x1_0000, 8 * n, cfg.prm_depth, "rw",
               "per output channel c of an o-tile: bias int32 at byte 8c, M uint16 at 8c+4, "
               "S uint8 at 8c+6"),
        Window("IMAGE", 0x2_0000, cfg.img_channels * cfg.img_pack, cfg.img_words, "rw",
               f"input image, {cfg.img_pack} pixel(s) per entry (one bus write): channel c of pixel p "
               f"at entry p // {cfg.img_pack}, byte (p % {cfg.img_pack}) * {cfg.img_channels} + c (int8)"),
        Window("ACT_A", 0x4_0000, n, cfg.act_depth, "rw",
               "activation buffer A: one pixel of an N-channel tile per entry (int8)"),
        Window("ACT_B", 0x6_0000, n, cfg.act_depth, "rw",
               "activation buffer B (ping-pong partner of A)"),
        Window("WEIGHTS", 0x8_0000, n, cfg.wgt_depth, "rw",
               "weights: one array row (N output channels, int8) per entry"),
    ]
    m = RegMap(cfg, sorted(regs, key=lambda r: r.offset), windows)
    m.check()
    return m


# --------------------------------------------------------------------------------------------
# Documentation


def _offset_text(r: Register) -> str:
    if r.count == 1:
        return f"`{r.offset:#05x}`"
    return f"`{r.offset:#05x} + {r.stride}*j` (j < {r.count})"


def markdown(cfg: "ArrayConfig") -> str:
    """The register map page (docs/registers.md) for ``cfg``: registers, windows, descriptor, error codes."""
    m = regmap(cfg)
    out = [f"### Registers ({cfg.rows}x{cfg.cols} array, {cfg.addr_bits}-bit byte addresses, "
           f"32-bit registers)", "",
           "Access: `rw` read/write, `ro` read-only (writes ignored, OKAY), `w1` write 1 to pulse "
           "for one cycle (reads 0). Unmapped addresses answer DECERR.", "",
           "| offset | name | access | reset | fields | description |",
           "| --- | --- | --- | --- | --- | --- |"]
    for r in m.registers:
        if len(r.fields) == 1 and r.fields[0].name == r.name and r.fields[0].width == 32:
            fields_text = "[31:0]"
        else:
            fields_text = "<br>".join(f"{f.name}{f.bits}" + (f": {f.doc}" if f.doc else "")
                                      for f in r.fields)
        out.append(f"| {_offset_text(r)} | {r.name} | {r.access} | `{r.reset:#010x}` | "
                   f"{fields_text} | {r.doc} |")
    out += ["", "64-bit counters read as `<NAME>_LO` (bits 31:0) then `<NAME>_HI` (bits 63:32), "
            f"counter k at `{COUNTER_BASE:#05x} + 8*k`, in this order: " + ", ".join(COUNTERS) + ".",
            "", "### Memory windows", "",
            "Entry e, byte b of a window is at `base + e*stride + b`; a 32-bit access touches "
            "bytes [b, b+4) of the entry (clipped to the word), honouring WSTRB. Windows are "
            "accessible only while STATUS.BUSY is 0 (SLVERR otherwise).", "",
            "| base | name | access | word bytes | stride | depth | size | description |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for w in m.windows:
        out.append(f"| `{w.base:#07x}` | {w.name} | {w.access} | {w.word_bytes} | {w.stride} | "
                   f"{w.depth} | {w.size:#x} | {w.doc} |")
    out += ["", "### Layer descriptor", "",
            f"Descriptor j, word i at `{DESC_BASE:#05x} + {DESC_STRIDE}*j + 4*i` "
            "(registers `DESC_W0` .. `DESC_W7`). The table is a RAM that reset clears: for "
            f"{cfg.n_desc} cycles (one per descriptor) after reset the bus accepts no address or "
            "data (AWREADY, WREADY, ARREADY low).", "",
            "| word | field | bits | description |", "| --- | --- | --- | --- |"]
    for i, word in enumerate(DESC_FIELDS):
        for f in word:
            out.append(f"| w{i} | {f.name} | {f.bits} | {f.doc} |")
    out += ["", "### Error codes (STATUS.ERROR_CODE)", "", "| code | name | meaning |",
            "| --- | --- | --- |"]
    for e in Error:
        out.append(f"| {int(e)} | {e.name} | {ERROR_DOCS[e]} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    from .params import parse_array
    p = OneLineParser(prog="python -m hw.contract.regmap", description=__doc__.splitlines()[0])
    p.add_argument("--markdown", action="store_true", help="print the register tables (Markdown)")
    p.add_argument("--array", default="8x8", help="array geometry RxC (default 8x8)")
    args = p.parse_args(argv)
    try:
        cfg = parse_array(args.array)
    except ValueError as e:
        p.error(str(e))
    if not args.markdown:
        p.error("nothing to do: pass --markdown (make report writes docs/registers.md)")
    sys.stdout.write(markdown(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
