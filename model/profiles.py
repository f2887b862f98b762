"""Per-layer width profiles: which ones are worth running, and what a wasteful one computes.

A profile gives each convolution its active group count (1..G). With block lower-triangular
connectivity output group g of layer l+1 reads input groups 0..g, so layer l's groups at or above
layer l+1's active count are read by nobody: a profile that narrows ((4,4,1)) computes exactly the
logits of its *clipped* profile ((1,1,1)), at more cycles. The *useful* profiles are the
non-decreasing ones (20 of the 64 for three convolutions and G = 4).

A useful profile belongs to the incremental stage of its last count t (the classifier head it
uses): stage t trains group t-1 of every layer, and every input pattern a group can meet in any
useful profile occurs among the profiles of the stage that trains it (the group reads input groups
0..g, and the earlier layers' counts range over 1..t in that stage). So training every stage on
its own profiles keeps the freeze exact: a narrower profile is bit-identical after later stages.
"""
from __future__ import annotations

from itertools import combinations_with_replacement


class ProfileError(ValueError):
    pass


def useful(G: int, n: int) -> list[tuple[int, ...]]:
    """Every non-decreasing profile of ``n`` counts in 1..G, by stage (last count), then
    lexicographically."""
    return sorted(combinations_with_replacement(range(1, G + 1), n), key=lambda p: (p[-1], p))


def stage(G: int, n: int, t: int) -> list[tuple[int, ...]]:
    """The useful profiles trained in stage ``t`` (last count ``t``): t(t+1)/2 of them for n = 3."""
    return [p for p in useful(G, n) if p[-1] == t]


def clip(profile) -> tuple[int, ...]:
    """The useful profile that computes the same logits: each count capped by the next layer's."""
    out = list(profile)
    for i in range(len(out) - 2, -1, -1):
        out[i] = min(out[i], out[i + 1])
    return tuple(out)


def is_useful(profile) -> bool:
    return tuple(profile) == clip(profile)


def key(profile) -> str:
    """The profile's name in reports and in the export's metadata: "1,2,4"."""
    return ",".join(str(int(g)) for g in profile)


def parse(text: str, G: int, n: int, what: str = "--layer-groups") -> tuple[int, ...]:
    """A profile from "1,2,4", checked: ``n`` integers in 1..G."""
    try:
        p = tuple(int(t) for t in str(text).split(","))
    except ValueError:
        raise ProfileError(f"{what} takes {n} comma-separated integers such as "
                           f"{key(range(1, n + 1))}; got {text!r}") from None
    if len(p) != n:
        raise ProfileError(f"{what} needs {n} counts (one per convolution), got {len(p)} in {text!r}")
    if any(not 1 <= g <= G for g in p):
        raise ProfileError(f"{what} counts must be in 1..{G}, got {text!r}")
    return p
