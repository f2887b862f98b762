"""The host driver: typed operations on the accelerator over any 32-bit register bus.

The same code runs everywhere: against the RTL inside amaranth.sim or cocotb (hardware in the
loop, through a bus adapter that performs real AXI4-Lite transactions) and against the Python
model backend. A bus adapter has two coroutines, ``read32(addr) -> int`` and ``write32(addr,
value)``, and an optional ``cycles()`` for timeouts.
"""
from __future__ import annotations

import numpy as np

from hw.contract.program import pack_params
from hw.contract.regmap import COUNTERS, DESC_BASE, DESC_STRIDE, Error, counter_offset, encode_descriptor, regmap


class AcceleratorError(RuntimeError):
    """The accelerator reported an error code, or did not finish in time."""


class Driver:
    def __init__(self, bus, cfg):
        self.bus, self.cfg = bus, cfg
        self.map = regmap(cfg)

    # -------------------------------------------------------------- registers
    async def write_reg(self, name: str, value: int, index: int = 0) -> None:
        await self.bus.write32(self.map.offset(name, index), value)

    async def read_reg(self, name: str, index: int = 0) -> int:
        return await self.bus.read32(self.map.offset(name, index))

    async def status(self) -> dict:
        v = await self.read_reg("STATUS")
        f = {name: self.map.field("STATUS", name) for name in ("BUSY", "DONE", "ERROR", "ERROR_CODE", "LAYER")}
        return {name.lower(): (v >> fld.lsb) & ((1 << fld.width) - 1) for name, fld in f.items()}

    async def read_counters(self) -> dict:
        out = {}
        for name in COUNTERS:
            lo = await self.bus.read32(counter_offset(name))
            hi = await self.bus.read32(counter_offset(name) + 4)
            out[name] = lo | (hi << 32)
        return out

    async def clear_counters(self) -> None:
        await self.write_reg("CTRL", 1 << self.map.field("CTRL", "CLEAR_COUNTERS").lsb)

    async def read_layer_cycles(self, count: int) -> list[int]:
        return [await self.read_reg("LAYER_CYCLES", j) for j in range(count)]

    # -------------------------------------------------------------- memory windows
    async def write_window(self, name: str, entries: np.ndarray, first: int = 0) -> None:
        """Entries (k, word_bytes) of uint8/int8, from entry ``first``."""
        w = self.map.window(name)
        raw = np.ascontiguousarray(entries).view(np.uint8).reshape(len(entries), -1)
        if raw.shape[1] != w.word_bytes:
            raise ValueError(f"{name} entries are {w.word_bytes} bytes, got {raw.shape[1]}")
        if first + len(raw) > w.depth:
            raise ValueError(f"{name} holds {w.depth} entries; {first + len(raw)} needed")
        padded = np.zeros((len(raw), max(4, w.word_bytes)), np.uint8)
        padded[:, :w.word_bytes] = raw
        words = padded.view("<u4")
        for e in range(len(raw)):
            for k in range(words.shape[1]):
                await self.bus.write32(w.base + (first + e) * w.stride + 4 * k, int(words[e, k]))

    async def read_window(self, name: str, count: int, first: int = 0) -> np.ndarray:
        """``count`` entries as uint8 (count, word_bytes)."""
        w = self.map.window(name)
        nw = -(-w.word_bytes // 4)
        out = np.zeros((count, 4 * nw), np.uint8)
        for e in range(count):
            for k in range(nw):
                v = await self.bus.read32(w.base + (first + e) * w.stride + 4 * k)
                out[e, 4 * k:4 * k + 4] = np.frombuffer(int(v).to_bytes(4, "little"), np.uint8)
        return out[:, :w.word_bytes]

    # -------------------------------------------------------------- program, image, width
    async def load_program(self, program) -> None:
        """Descriptors, weight words and parameter entries (once; every width reuses them)."""
        for j, d in enumerate(program.descs):
            for i, word in enumerate(encode_descriptor(d)):
                await self.bus.write32(DESC_BASE + DESC_STRIDE * j + 4 * i, word)
        await self.write_window("WEIGHTS", program.weights.view(np.uint8))
        n = self.cfg.rows
        await self.write_window("PARAMS", pack_params(program.bias.reshape(-1), program.M.reshape(-1),
                                                      program.S.reshape(-1), n))

    async def load_image(self, image_bytes: np.ndarray) -> None:
        await self.write_window("IMAGE", image_bytes)

    async def set_groups(self, program, groups) -> None:
        """Per-layer active groups through the channel-count registers (CHAN), WIDTH = 0."""
        await self.write_reg("WIDTH", 0)
        for j, (gi, go) in enumerate(program.chan(groups)[:program.num_layers]):
            await self.write_reg("CHAN", (gi << 8) | go, j)

    async def set_width(self, k: int) -> None:
        """Uniform width: every layer runs ``k`` groups (one register write)."""
        await self.write_reg("WIDTH", k)

    # -------------------------------------------------------------- run
    async def start(self, first: int, num: int) -> None:
        await self.write_reg("FIRST_LAYER", first)
        await self.write_reg("NUM_LAYERS", num)
        await self.write_reg("CTRL", 1 << self.map.field("CTRL", "START").lsb)

    async def wait(self, max_polls: int = 100000) -> dict:
        """Poll STATUS until DONE; a bounded wait that raises instead of hanging."""
        for _ in range(max_polls):
            st = await self.status()
            if st["done"] and not st["busy"]:
                return st
        raise AcceleratorError(f"the accelerator did not finish within {max_polls} status polls")

    async def run(self, first: int, num: int, max_polls: int = 100000) -> dict:
        await self.start(first, num)
        st = await self.wait(max_polls)
        if st["error"]:
            raise AcceleratorError(f"accelerator error {Error(st['error_code']).name} at descriptor {st['layer']}")
        return st

    async def read_logits(self, classes: int) -> np.ndarray:
        raw = await self.read_window("LOGITS", classes)
        return raw.view("<i4").reshape(-1).astype(np.int32)

    async def abort(self) -> None:
        await self.write_reg("CTRL", 1 << self.map.field("CTRL", "ABORT").lsb)
