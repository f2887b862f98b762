"""AXI4-Lite control slave: the register map of :mod:`hw.contract.regmap` and its memory windows on one bus.

The decoder is generated from :func:`hw.contract.regmap.regmap`, so an address exists here exactly when it
exists in the map (and in the README, and in the host driver).
"""
from __future__ import annotations

import operator
from functools import reduce

from amaranth import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..contract.params import ArrayConfig
from ..contract.regmap import COUNTERS, DESC_BASE, DESC_STRIDE, DESC_WORDS, Resp, Window, register_layout, regmap

__all__ = ["ControlBus"]

# STATUS field -> input port (the ro values the sequencer drives).
_STATUS_PORTS = {"BUSY": "status_busy", "DONE": "status_done", "ERROR": "status_error",
                 "ERROR_CODE": "status_code", "LAYER": "status_layer"}
# Registers whose single field is stored here and driven out on a port of the same name.
_SCALAR_RW = ("FIRST_LAYER", "NUM_LAYERS", "WIDTH")


def _window_addr_bits(w: Window) -> int:
    return max(1, (w.depth - 1).bit_length())


def _log2(x: int) -> int:
    assert x & (x - 1) == 0
    return x.bit_length() - 1


class ControlBus(wiring.Component):
    """AXI4-Lite slave (32-bit data) that exposes the control registers and memory windows.

    One transaction at a time. AW and W may arrive in either order or together; a write is
    performed once both were accepted, then B is held until ``bready``. A read's R is held until
    ``rready``. Readies depend only on state and on the other channels' valids (never the
    reverse), so the AXI handshake rules hold.

    Address decode (byte addresses; bits [1:0] are ignored, accesses are 32-bit words):

    * a register: OKAY. ``rw`` fields store the bytes enabled by ``wstrb`` (the new value is on
      the port from the cycle B becomes valid); ``ro`` fields ignore writes; ``w1`` fields pulse
      their port for exactly one cycle (the first cycle of B valid) and read 0;
    * a window while ``busy`` is 0: OKAY. The access touches bytes ``[b, b + 4)`` of entry ``e``
      (clipped to the entry's ``word_bytes``), honouring ``wstrb``; writes to a read-only window
      are ignored;
    * a window while ``busy`` is 1: SLVERR, no memory access, read data 0;
    * anything else: DECERR, read data 0.

    Latency: a register read answers (R valid) 3 cycles after AR is accepted (its multiplexer is
    split over two cycles), a window read 5 cycles (the memory read, a wide entry's 4-word
    groups registered, its word registered, then the window's); B is valid 2 cycles after the
    later of AW and W is accepted. The hit flags (register, window) are decoded when the address is accepted.

    Parameters
    ----------
    cfg : ArrayConfig
        Geometry; fixes the register map, the window widths and the address width
        ``cfg.addr_bits``.

    Members
    -------
    s_axil_awaddr, s_axil_awprot, s_axil_awvalid, s_axil_awready : AXI4-Lite write address
        ``awaddr`` is ``unsigned(cfg.addr_bits)``; ``awprot`` is ignored.
    s_axil_wdata, s_axil_wstrb, s_axil_wvalid, s_axil_wready : AXI4-Lite write data (32 bit)
    s_axil_bresp, s_axil_bvalid, s_axil_bready : AXI4-Lite write response
    s_axil_araddr, s_axil_arprot, s_axil_arvalid, s_axil_arready : AXI4-Lite read address
    s_axil_rdata, s_axil_rresp, s_axil_rvalid, s_axil_rready : AXI4-Lite read data
        Signal names follow cocotbext-axi's ``AxiLiteBus.from_prefix(dut, "s_axil")``.
    first_layer, num_layers, width : Out(8)
        The ``rw`` registers of the same names.
    chan : Out(ArrayLayout(layout of CHAN, n_desc))
        Channel-count register per descriptor: ``chan[j].out_groups``, ``chan[j].in_groups``.
    desc_idx : In(range(n_desc))
        Descriptor the sequencer reads.
    desc : Out(ArrayLayout(unsigned(32), 8))
        Its words, registered: ``desc[i]`` is ``DESC_W<i>[desc_idx]`` of the previous cycle;
        name its fields with ``data.View(regmap.descriptor_layout(), desc.as_value())``. The table is a RAM (LUT-RAM
        on an FPGA: one 256-bit row per descriptor, one copy per read port) that reset clears:
        for ``n_desc`` cycles after reset it writes zero rows and the bus accepts no address or
        data (AWREADY, WREADY, ARREADY low). So it reads exactly like registers: a byte not
        written since reset reads 0 and bits outside the fields read 0.
    start, abort, clear_counters : Out(1)
        One-cycle pulses from writing 1 to the ``CTRL`` bits.
    busy : In(1)
        While 1, window accesses answer SLVERR and touch no memory.
    status_busy, status_done, status_error : In(1)
    status_code : In(4)
    status_layer : In(8)
        Read back in ``STATUS``.
    counters : In(Signature({name.lower(): Out(64) for name in COUNTERS}))
        The performance counters, e.g. ``counters.macs``; read as ``<NAME>_LO`` / ``_HI``.
    layer_cycles : In(ArrayLayout(unsigned(32), n_desc))
        Read back in ``LAYER_CYCLES[j]``.
    <w>_addr : Out(unsigned(max(1, ceil(log2(depth)))))
        For each window ``w`` (lower-case name: ``logits``, ``params``, ``image``, ``act_a``,
        ``act_b``, ``weights``): the entry of the current access (valid with ``re`` / ``wen``).
    <w>_wdata : Out(8 * word_bytes)
        The AXI write data repeated across the entry; only bytes enabled by ``wen`` count.
    <w>_wen : Out(word_bytes)
        Byte write enables, for one cycle per write, the cycle after the FSM's WRITE state (a
        register; always 0 for read-only windows).
    <w>_re : Out(1)
        Read enable, for one cycle per read, the cycle after the FSM's READ state (a register).
    <w>_rdata : In(8 * word_bytes)
        The entry read, valid two cycles after ``re`` (a synchronous read port and the register
        the top level puts behind it) and held until the next ``re``.
    bus_rd_bytes : Out(3)
        4 in the cycle an R beat completes (any response), else 0.
    bus_wr_bytes : Out(3)
        Number of ``wstrb`` bits set, in the cycle a B beat completes (any response), else 0.
    """

    def __init__(self, cfg):
        if not isinstance(cfg, ArrayConfig):
            self._MustUse__silence = True  # never built, so never "created but not used"
            raise TypeError(f"ControlBus needs an ArrayConfig, got {cfg!r}")
        self._cfg = cfg
        self._map = regmap(cfg)
        m = self._map
        ab = cfg.addr_bits
        sig = {
            "s_axil_awaddr": In(ab), "s_axil_awprot": In(3),
            "s_axil_awvalid": In(1), "s_axil_awready": Out(1),
            "s_axil_wdata": In(32), "s_axil_wstrb": In(4),
            "s_axil_wvalid": In(1), "s_axil_wready": Out(1),
            "s_axil_bresp": Out(2), "s_axil_bvalid": Out(1), "s_axil_bready": In(1),
            "s_axil_araddr": In(ab), "s_axil_arprot": In(3),
            "s_axil_arvalid": In(1), "s_axil_arready": Out(1),
            "s_axil_rdata": Out(32), "s_axil_rresp": Out(2),
            "s_axil_rvalid": Out(1), "s_axil_rready": In(1),
        }
        for name in _SCALAR_RW:
            (f,) = m.reg(name).fields
            sig[name.lower()] = Out(f.width, init=f.reset)
        chan = m.reg("CHAN")
        sig["chan"] = Out(data.ArrayLayout(register_layout(chan), chan.count),
                          init=[{f.name.lower(): f.reset for f in chan.fields}] * chan.count)
        desc_regs = [m.reg(f"DESC_W{i}") for i in range(DESC_WORDS)]
        assert all(r.reset == 0 for r in desc_regs), "the descriptor RAM reads 0 until written"
        for i, r in enumerate(desc_regs):
            assert list(r.offsets) == [DESC_BASE + DESC_STRIDE * j + 4 * i for j in range(cfg.n_desc)]
        sig["desc_idx"] = In(range(cfg.n_desc))
        sig["desc"] = Out(data.ArrayLayout(unsigned(32), DESC_WORDS))
        for f in m.reg("CTRL").fields:
            sig[f.name.lower()] = Out(1)
        sig["busy"] = In(1)
        for fname, port in _STATUS_PORTS.items():
            sig[port] = In(m.field("STATUS", fname).width)
        sig["counters"] = In(wiring.Signature({c.lower(): Out(64) for c in COUNTERS}))
        sig["layer_cycles"] = In(data.ArrayLayout(unsigned(32), m.reg("LAYER_CYCLES").count))
        for w in m.windows:
            p = w.name.lower()
            sig[f"{p}_addr"] = Out(_window_addr_bits(w))
            sig[f"{p}_wdata"] = Out(8 * w.word_bytes)
            sig[f"{p}_wen"] = Out(w.word_bytes)
            sig[f"{p}_re"] = Out(1)
            sig[f"{p}_rdata"] = In(8 * w.word_bytes)
        sig["bus_rd_bytes"] = Out(3)
        sig["bus_wr_bytes"] = Out(3)
        super().__init__(sig)

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    @property
    def regmap(self):
        return self._map

    def _field_value(self, reg, j, f):
        """The hardware value behind field ``f`` of ``reg[j]``: the stored value (rw), the pulse
        (w1), the input (live ro), or None for a constant (ro with its reset value)."""
        name = reg.name
        if name in _SCALAR_RW:
            return getattr(self, name.lower())
        if name == "CHAN":
            return getattr(self.chan[j], f.name.lower())
        if name == "CTRL":
            return getattr(self, f.name.lower())
        if name == "STATUS":
            return getattr(self, _STATUS_PORTS[f.name])
        if name == "LAYER_CYCLES":
            return self.layer_cycles[j]
        for half, sl in (("_LO", slice(0, 32)), ("_HI", slice(32, 64))):
            if name.endswith(half) and name[:-len(half)] in COUNTERS:
                return getattr(self.counters, name[:-len(half)].lower())[sl]
        if f.access != "ro":
            raise NotImplementedError(f"{name}.{f.name} ({f.access}) is not wired to a port")
        return None

    def _read_word(self, reg, j):
        """The 32-bit value a read of ``reg[j]`` returns (uncovered bits and w1 fields read 0)."""
        parts, pos = [], 0
        for f in sorted(reg.fields, key=lambda f: f.lsb):
            if f.lsb > pos:
                parts.append(Const(0, f.lsb - pos))
            v = None if f.access == "w1" else self._field_value(reg, j, f)
            reset = 0 if f.access == "w1" else f.reset
            parts.append(Const(reset, f.width) if v is None else Value.cast(v)[:f.width])
            pos = f.msb + 1
        if pos < 32:
            parts.append(Const(0, 32 - pos))
        return Cat(*parts)

    def elaborate(self, platform):
        m = Module()
        rm = self._map
        ab = self._cfg.addr_bits

        addr = Signal(ab)  # address of the transaction in progress (AW or AR)
        wdata = Signal(32)
        wstrb = Signal(4)
        aw_got = Signal()
        w_got = Signal()
        rdata = Signal(32)
        resp = Signal(2)
        word = addr[2:]
        write_now = Signal()  # the cycle a write is performed (FSM state WRITE)

        # Descriptor table: RAM rows of 8 words. Reset clears it: for n_desc cycles a counter
        # writes zero rows while the bus accepts nothing, so it reads exactly like reset
        # registers (no valid bits, no masking). Both read ports are registered: the sequencer's
        # row (``desc``) a cycle after its ``desc_idx``, the bus's in READ (its word in READ2).
        nd, dw = self._cfg.n_desc, DESC_WORDS
        m.submodules.desc_mem = desc_mem = Memory(shape=unsigned(32 * dw), depth=nd, init=[])
        desc_wr = desc_mem.write_port(granularity=8)
        desc_seq = desc_mem.read_port(domain="comb")
        desc_bus = desc_mem.read_port(domain="comb")
        clearing = Signal(init=1)  # the cycles after reset that write the zero rows
        clr_row = Signal(range(max(nd, 2)))
        with m.If(clearing):
            m.d.sync += clr_row.eq(clr_row + 1)
            with m.If(clr_row == nd - 1):
                m.d.sync += clearing.eq(0)

        lw, jb = _log2(dw), max(1, (nd - 1).bit_length())
        tb = 2 + lw + jb  # address bits the table spans
        d_hit = Signal()  # decoded at address capture, with the other hit flags
        # The table's own copy of the address (word i, descriptor j), loaded at capture when the
        # table is hit, so the bus address register does not fan out into the table. They are
        # bit slices of the address when the table is aligned to its (power-of-two) size, as it
        # is for the default 16 descriptors at 0x400.
        d_i, d_j = Signal(lw, name="desc_i"), Signal(jb, name="desc_j")
        desc_rd_q = Signal(32 * dw, reset_less=True)  # the addressed row, read in READ
        fields = Cat(*[wdata & rm.reg(f"DESC_W{i}").mask for i in range(dw)])  # field bits only
        d_we = Signal(4 * dw)
        m.d.comb += d_we.eq(Cat(*[(write_now & d_hit & (d_i == i) & wstrb[b]) for i in range(dw) for b in range(4)]))
        m.d.comb += [desc_seq.addr.eq(self.desc_idx), desc_bus.addr.eq(d_j),
                     desc_wr.addr.eq(Mux(clearing, clr_row, d_j)),
                     desc_wr.data.eq(Mux(clearing, 0, fields)),
                     desc_wr.en.eq(Mux(clearing, (1 << (4 * dw)) - 1, d_we))]
        m.d.sync += self.desc.eq(desc_seq.data)

        m.d.comb += [
            self.s_axil_rdata.eq(rdata),
            self.s_axil_rresp.eq(resp),
            self.s_axil_bresp.eq(resp),
        ]
        aw_fire = self.s_axil_awvalid & self.s_axil_awready
        w_fire = self.s_axil_wvalid & self.s_axil_wready
        ar_fire = self.s_axil_arvalid & self.s_axil_arready

        # The hit flags (register / which window) are decoded from the incoming AW/AR address
        # and registered with it, so no address compare sits in front of the FSM or the data
        # multiplexers (the address register drives the memories across the chip).
        reg_hit = Signal()
        rd_sel = Signal(4)  # word[:4] for the register groups: a copy loaded by reads only
        # Register reads take two cycles: READ selects within each group of 16 words (by
        # word[0:4]) into a register per group, READ2 selects the group (by word[4:]), so no
        # cycle holds the whole 200-way multiplexer.
        groups = {}
        for reg in rm.registers:
            if reg.name.startswith("DESC_W"):  # the descriptor RAM: read through desc_rd_q
                continue
            for j, off in enumerate(reg.offsets):
                groups.setdefault((off >> 2) >> 4, []).append(((off >> 2) & 15, reg, j))
        grp_q = {}
        for g, items in sorted(groups.items()):
            v = Signal(32, name=f"rd_grp{g}")
            with m.Switch(rd_sel):
                for k, reg, j in items:
                    with m.Case(k):
                        m.d.comb += v.eq(self._read_word(reg, j))
            grp_q[g] = Signal(32, name=f"rd_grp{g}_q")
            m.d.sync += grp_q[g].eq(v)
        # READ2's group select, one-hot (word[4:] == g), loaded with rd_sel by reads only: an
        # AND-OR of the group registers behind it, no address decode (decoded at the read,
        # `bus.addr -> bus.s_axil_rdata` was 3 LUTs and two wide multiplexers, too long at 100 MHz)
        rd_grp = Signal(len(grp_q), name="rd_grp")
        cap = Signal(ab)  # the address being captured this cycle (AW has priority, see IDLE)
        m.d.comb += cap.eq(Mux(aw_fire, self.s_axil_awaddr, self.s_axil_araddr))

        def captured(decode):
            """``decode`` of the captured address: of AW's and of AR's each, then a 2-to-1 select
            by aw_fire (so the decode does not wait for the handshake logic)"""
            return Mux(aw_fire, decode(self.s_axil_awaddr), decode(self.s_axil_araddr))

        def reg_decode(a):
            hit = Signal()
            with m.Switch(a[2:]):
                for reg in rm.registers:
                    for off in reg.offsets:
                        with m.Case(off >> 2):
                            m.d.comb += hit.eq(1)
            return hit

        cap_reg_hit = captured(reg_decode)
        cap_d_hit = captured(lambda a: (a >= DESC_BASE) & (a < DESC_BASE + DESC_STRIDE * nd))
        cap_rel = cap if DESC_BASE % (1 << tb) == 0 else cap - DESC_BASE  # bit slices when aligned
        # loaded with the address: the hit flags, and per-consumer address copies, each under
        # its own hit (so Yosys does not merge them back into the address register)
        load_hits = [reg_hit.eq(cap_reg_hit), d_hit.eq(cap_d_hit)]
        load_sel = [(cap_d_hit, [d_i.eq(cap_rel[2:2 + lw]), d_j.eq(cap_rel[2 + lw:tb])])]

        strb_mask = Signal(32)
        pulses = Signal(32)  # w1 fields
        m.d.comb += [
            strb_mask.eq(Cat(wstrb[k].replicate(8) for k in range(4))),
            pulses.eq(wdata & strb_mask),
        ]
        ctrl = rm.reg("CTRL")
        for f in ctrl.fields:  # w1 pulses: high for exactly the cycle after the write
            m.d.sync += self._field_value(ctrl, 0, f).eq(0)
        # rw fields take the enabled bytes of wdata, each byte lane under its own enable (no
        # read-modify-write through the read multiplexer); w1 fields pulse
        for reg in rm.registers:
            if reg.access == "ro" or reg.name.startswith("DESC_W"):  # DESC: the RAM above
                continue
            for j, off in enumerate(reg.offsets):
                with m.If(write_now & (word == off >> 2)):
                    for f in reg.fields:
                        if f.access == "w1":
                            m.d.sync += self._field_value(reg, j, f).eq(pulses[f.lsb:f.lsb + f.width])
                        elif f.access == "rw":
                            v = Value.cast(self._field_value(reg, j, f))
                            for b in range(4):
                                lo, hi = max(f.lsb, 8 * b), min(f.msb, 8 * b + 7)
                                if lo <= hi:
                                    with m.If(wstrb[b]):
                                        m.d.sync += v[lo - f.lsb:hi - f.lsb + 1].eq(wdata[lo:hi + 1])

        # Window decode: entry and 32-bit slot inside the entry; bases are stride-aligned
        # (checked by the map), so these are bit slices and one subtraction.
        win = []
        for w in rm.windows:
            lg = _log2(w.stride)
            p = w.name.lower()
            hit = Signal(name=f"{p}_hit")
            cap_hit = captured(lambda a, w=w: (a >= w.base) & (a < w.end))
            load_hits.append(hit.eq(cap_hit))
            # the window's own copy of the entry and slot: the address register does not fan out
            # to every memory and read multiplexer. The slot (read in WRITE, the cycle after
            # the capture) loads at capture when the window is hit; the entry, first used by the
            # memory in the cycle after WRITE or READ, loads every cycle from the captured
            # address, so no capture condition (the AXI state, the valid and ready handshakes,
            # the window decode) enables its flip-flops (V's -6 runs: `bus.axil_state ->
            # bus.*_entry`, 10 endpoints per window up to -1.0 ns)
            entry = Signal(_window_addr_bits(w), name=f"{p}_entry", reset_less=True)
            slot = Signal(max(1, lg - 2), name=f"{p}_slot")
            m.d.sync += entry.eq((addr[lg:] - (w.base >> lg))[:len(entry)])
            load_sel.append((cap_hit, [slot.eq(cap[2:lg] if lg > 2 else 0)]))
            rdat = getattr(self, f"{p}_rdata")
            m.d.comb += [
                getattr(self, f"{p}_addr").eq(entry),
                getattr(self, f"{p}_wdata").eq(wdata.replicate(w.stride // 4)[:8 * w.word_bytes]),
            ]
            # Byte i of the entry is written when it lies in the addressed slot and its lane of
            # wstrb is set; bytes past word_bytes do not exist.
            wen_bytes = Cat(((slot == i // 4) & wstrb[i % 4]) for i in range(w.word_bytes))
            padded = Cat(rdat, Const(0, 8 * (w.stride - w.word_bytes)))
            nslot = w.stride // 4
            if nslot > 4:
                # A wide entry's word is selected in two registered steps, 4 to 1 each: first
                # within each group of 4 words (right behind the memory, whose clock-to-output is
                # slow on an FPGA), loading every cycle (the memory's output holds after its read),
                # then the group, in RWAIT1.
                part = Signal(32 * (nslot // 4), name=f"{p}_rd_part")
                m.d.sync += part.eq(Cat(*[padded[128 * k:128 * (k + 1)].word_select(slot[:2], 32)
                                          for k in range(nslot // 4)]))
                rsel = part.word_select(slot[2:], 32)
            else:
                rsel = padded.word_select(slot, 32) if lg > 2 else padded[:32]
            win.append((w, hit, wen_bytes, rsel))

        def decode(on_reg, on_window):
            """A register, else a window (SLVERR while busy), else DECERR."""
            with m.If(reg_hit):
                m.d.sync += resp.eq(Resp.OKAY)
                on_reg()
            for w, hit, wen_bytes, rsel in win:
                with m.Elif(hit):
                    with m.If(self.busy):
                        m.d.sync += [resp.eq(Resp.SLVERR), rdata.eq(0)]
                    with m.Else():
                        m.d.sync += resp.eq(Resp.OKAY)
            with m.Else():
                m.d.sync += [resp.eq(Resp.DECERR), rdata.eq(0)]
            # The window accesses: the hit flags are exclusive (disjoint address ranges, loaded
            # together at capture), so each window's strobes need only its own hit, not the
            # priority chain of the response above.
            for w, hit, wen_bytes, rsel in win:
                with m.If(hit & ~reg_hit & ~self.busy):
                    on_window(w, wen_bytes)

        # Each window's byte enables (``<w>_wen_q``) and read enable (``<w>_re_q``) are registers,
        # set in WRITE / READ and cleared the cycle after: the memory writes in BRESP and reads in
        # RWAITR, from a flip-flop, so neither the FSM state nor the hit and strobe decode routes
        # into a block RAM's enables in one cycle (the weight and parameter memories' enables are
        # the sequencer's or the bus's). The entry and write data registers hold from capture
        # until the next transaction.
        wen_q, re_q = {}, {}
        for w, *_ in win:
            p = w.name.lower()
            enables = [(re_q, Signal(name=f"{p}_re_q"), "re")]
            if w.access == "rw":
                enables.append((wen_q, Signal(w.word_bytes, name=f"{p}_wen_q"), "wen"))
            for regs, q, port in enables:
                regs[p] = q
                m.d.sync += q.eq(0)
                m.d.comb += getattr(self, f"{p}_{port}").eq(q)

        def write_window(w, wen_bytes):
            if w.access == "rw":
                m.d.sync += wen_q[w.name.lower()].eq(wen_bytes)

        def read_reg():
            m.d.comb += read_to_reg2.eq(1)
            m.d.sync += desc_rd_q.eq(desc_bus.data)

        read_to_wait = Signal()
        read_to_reg2 = Signal()
        win_q = [Signal(32, name=f"{w.name.lower()}_rd_q") for w, *_ in win]

        def read_window(w, wen_bytes):
            m.d.sync += re_q[w.name.lower()].eq(1)
            m.d.comb += read_to_wait.eq(1)

        def capture(address):
            """Take the transaction's address, its hit flags and the address copies."""
            m.d.sync += [addr.eq(address), *load_hits]
            for cond, stmts in load_sel:
                with m.If(cond):
                    m.d.sync += stmts

        with m.FSM(name="axil"):
            with m.State("IDLE"):
                m.d.comb += [
                    # nothing is accepted while reset clears the descriptor table
                    self.s_axil_awready.eq(~aw_got & ~clearing),
                    self.s_axil_wready.eq(~w_got & ~clearing),
                    # A read is taken only when no write has started (one transaction at a time).
                    self.s_axil_arready.eq(~(aw_got | w_got | self.s_axil_awvalid
                                             | self.s_axil_wvalid | clearing)),
                ]
                with m.If(aw_fire):
                    m.d.sync += aw_got.eq(1)
                    capture(self.s_axil_awaddr)
                with m.If(w_fire):
                    m.d.sync += [wdata.eq(self.s_axil_wdata), wstrb.eq(self.s_axil_wstrb),
                                 w_got.eq(1)]
                with m.If((aw_got | aw_fire) & (w_got | w_fire)):
                    m.next = "WRITE"
                with m.Elif(ar_fire):
                    m.d.sync += [rd_sel.eq(self.s_axil_araddr[2:6]),
                                 rd_grp.eq(Cat(*[self.s_axil_araddr[6:] == g for g in grp_q]))]
                    capture(self.s_axil_araddr)
                    m.next = "READ"
            with m.State("WRITE"):
                m.d.comb += write_now.eq(1)
                m.d.sync += [aw_got.eq(0), w_got.eq(0)]
                decode(lambda: None, write_window)
                m.next = "BRESP"
            with m.State("BRESP"):
                m.d.comb += self.s_axil_bvalid.eq(1)
                with m.If(self.s_axil_bready):
                    m.d.comb += self.bus_wr_bytes.eq(sum(wstrb[k] for k in range(4)))
                    m.next = "IDLE"
            with m.State("READ"):
                decode(read_reg, read_window)
                m.next = "RRESP"
                with m.If(read_to_wait):
                    m.next = "RWAITR"
                with m.If(read_to_reg2):
                    m.next = "READ2"
            with m.State("READ2"):
                with m.If(d_hit):
                    m.d.sync += rdata.eq(desc_rd_q.word_select(d_i, 32))
                with m.Else():  # a register read: its group is always one of grp_q's
                    m.d.sync += rdata.eq(reduce(operator.or_, [Mux(rd_grp[k], grp_q[g], 0)
                                                               for k, g in enumerate(grp_q)]))
                m.next = "RRESP"
            with m.State("RWAITR"):
                # the window's read enable register is set: its memory reads ...
                m.next = "RWAIT"
            with m.State("RWAIT"):
                # the memories' read data, which the top level registers behind each memory ...
                m.next = "RWAIT0"
            with m.State("RWAIT0"):
                # ... that register's word (a wide entry's 4-word groups register meanwhile) ...
                m.next = "RWAIT1"
            with m.State("RWAIT1"):
                # ... each window's addressed word, registered next to its memory ...
                for (w, hit, wen_bytes, rsel), q in zip(win, win_q):
                    m.d.sync += q.eq(rsel)
                m.next = "RWAIT2"
            with m.State("RWAIT2"):
                # ... then the window's
                for (w, hit, wen_bytes, rsel), q in zip(win, win_q):
                    with m.If(hit):
                        m.d.sync += rdata.eq(q)
                m.next = "RRESP"
            with m.State("RRESP"):
                m.d.comb += self.s_axil_rvalid.eq(1)
                with m.If(self.s_axil_rready):
                    m.d.comb += self.bus_rd_bytes.eq(4)
                    m.next = "IDLE"
        return m
