"""What the sequencer's parts share: the ``Context`` that carries signals from the part that
makes them to the parts that read them, and the widths every part uses."""
from types import SimpleNamespace

from amaranth import Mux

C16 = 16  # width of channel counts, sizes and word addresses inside the sequencer
SA = 24  # signed width of address arithmetic (padding makes intermediate values negative)


def min_(a, b):
    return Mux(a < b, a, b)


class Context(SimpleNamespace):
    """The signals of one ``Sequencer.elaborate``, by name. Each part ``take``\\ s what earlier
    parts made, by name, and ``give``\\ s what later parts read; a part never reaches into
    another's locals, so the names a part takes are its whole interface."""

    def take(self, names: str) -> list:
        missing = [n for n in names.split() if not hasattr(self, n)]
        if missing:
            raise AttributeError(f"no part has made {missing} yet (the parts run in Sequencer.PARTS order)")
        return [getattr(self, n) for n in names.split()]

    def give(self, scope: dict, names: str) -> None:
        for n in names.split():
            if hasattr(self, n):
                raise AttributeError(f"{n!r} is made by two parts")
            setattr(self, n, scope[n])
