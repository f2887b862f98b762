"""A 16-step restoring divider that DECODE runs in its own cycles (no divider in one cycle)."""
from amaranth import Cat, Mux, Signal

from .context import C16


class Divider:
    """``start(num, den)`` loads; then 16 ``step()`` cycles leave ``q = num // den`` and
    ``r = num % den`` (``den`` != 0; ``den`` = 0 gives q = 2**16 - 1, r = num). Its registers are
    in the caller's module, named ``<name>_num`` ... ``<name>_r``."""

    def __init__(self, m, name):
        self.num = Signal(C16, name=f"{name}_num")
        self.den = Signal(C16, name=f"{name}_den")
        self.q = Signal(C16, name=f"{name}_q")
        self.r = Signal(C16 + 1, name=f"{name}_r")
        self._m = m

    def start(self, num, den):
        m = self._m
        m.d.sync += [self.num.eq(num), self.den.eq(den), self.q.eq(0), self.r.eq(0)]

    def step(self):
        """One quotient bit, most significant first (the numerator shifts out of its top)."""
        m = self._m
        shifted = Cat(self.num[C16 - 1], self.r[:C16])
        ge = shifted >= self.den
        m.d.sync += [self.r.eq(Mux(ge, shifted - self.den, shifted)), self.num.eq(self.num << 1),
                     self.q.eq(Cat(ge, self.q[:C16 - 1]))]
