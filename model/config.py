"""Network configuration: one dataclass that fixes the dynamic-width CNN's shape.

Every layer of the network maps onto the accelerator as a convolution (see
docs/contract.md): the convolutions' output channels are split into ``groups`` equal
channel groups with block lower-triangular connectivity, and the classifier is a "valid"
convolution whose kernel covers the whole remaining feature map.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

HEAD_MODES = ("per_width", "shared")
CONNECTIVITY = ("triangular", "dense")


@dataclass(frozen=True)
class ConvSpec:
    """One split convolution layer (conv -> BatchNorm -> [ReLU] -> [2x2 max-pool])."""

    name: str
    out_channels: int  # at full width; must be a multiple of the group count
    kernel: int = 3  # square KxK kernel
    stride: int = 1
    padding: int = 1  # zero padding on every side
    relu: bool = True
    pool: bool = True  # 2x2 / stride-2 max-pool after requantization (floor on odd sizes)


@dataclass(frozen=True)
class NetConfig:
    """The whole network. The default is the reference network for 28x28 Fashion-MNIST."""

    in_channels: int = 1  # image channels; the first layer reads all of them at every width
    in_size: int = 28  # square input images
    num_classes: int = 10  # classifier outputs; never split into groups
    groups: int = 4  # G: widths 1/G, 2/G, ..., 1
    convs: tuple[ConvSpec, ...] = field(default_factory=lambda: (
        ConvSpec("conv1", 32),
        ConvSpec("conv2", 64),
        ConvSpec("conv3", 64),
    ))
    # "per_width": one small classifier per active-group count (keeps narrower logits bit-exact
    # when later groups are trained); "shared": one classifier sliced by width.
    head: str = "per_width"
    # "triangular": output group g reads input groups 0..g (the chanscale contract);
    # "dense": ordinary convolution, used for the independently trained baselines (groups=1).
    connectivity: str = "triangular"

    def __post_init__(self):
        if self.groups < 1:
            raise ValueError(f"groups must be >= 1, got {self.groups}")
        if self.head not in HEAD_MODES:
            raise ValueError(f"head must be one of {HEAD_MODES}, got {self.head!r}")
        if self.connectivity not in CONNECTIVITY:
            raise ValueError(f"connectivity must be one of {CONNECTIVITY}, got {self.connectivity!r}")
        if not self.convs:
            raise ValueError("the network needs at least one convolution before the classifier")
        for c in self.convs:
            if c.out_channels % self.groups:
                raise ValueError(f"{c.name}: {c.out_channels} channels do not split into {self.groups} groups")
            if c.kernel < 1 or c.stride < 1 or not 0 <= c.padding < c.kernel:
                raise ValueError(f"{c.name}: need kernel >= 1, stride >= 1, 0 <= padding < kernel")
        if self.classifier_kernel < 1:
            raise ValueError(f"the feature map shrinks to nothing before the classifier: {self.feature_sizes}")

    @property
    def feature_sizes(self) -> list[int]:
        """Spatial size of the input of each conv, then of the classifier's input."""
        sizes = [self.in_size]
        for c in self.convs:
            s = (sizes[-1] + 2 * c.padding - c.kernel) // c.stride + 1
            sizes.append(s // 2 if c.pool else s)
        return sizes

    @property
    def classifier_kernel(self) -> int:
        return self.feature_sizes[-1]

    def group_size(self, layer: int) -> int:
        """Channels per group of conv ``layer``'s output."""
        return self.convs[layer].out_channels // self.groups

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        d = dict(d)
        d["convs"] = tuple(ConvSpec(**c) for c in d["convs"])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def scaled(self, active_groups: int) -> "NetConfig":
        """The dense single-group network with ``active_groups``/G of every layer's channels
        (the independently trained baseline for that width)."""
        return self.dense((active_groups,) * len(self.convs))

    def dense(self, profile) -> "NetConfig":
        """The dense single-group network with ``profile[l]``/G of layer l's channels (the
        individually trained baseline for that per-layer profile)."""
        convs = tuple(replace(c, out_channels=c.out_channels * k // self.groups)
                      for c, k in zip(self.convs, profile))
        return replace(self, convs=convs, groups=1, connectivity="dense", head="shared")


REFERENCE = NetConfig()
