"""One measurement session, the same coroutine on every backend (model, Verilator, Icarus):
program the accelerator once, then for each configuration set the channel-count register, run
images through the whole network from one START, and take per-layer counters from one START per
descriptor. Everything it returns comes from the device's own registers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.contract.program import image_bytes


@dataclass(frozen=True)
class RunConfig:
    """A width configuration: per-layer active groups, and the uniform k if there is one."""

    groups: tuple
    uniform: int | None  # k when every split layer runs k groups (written to WIDTH)

    @classmethod
    def of(cls, groups) -> "RunConfig":
        """The configuration of per-layer ``groups``: uniform when every layer has the same count."""
        groups = tuple(groups)
        return cls(groups=groups, uniform=groups[0] if len(set(groups)) == 1 else None)

    @property
    def name(self) -> str:
        return f"w{self.uniform}" if self.uniform else "g" + "-".join(map(str, self.groups))


async def measure(drv, program, configs, images, classes: int, progress=None, max_polls: int = 100_000) -> dict:
    """Counters, LAYER_CYCLES and logits per configuration and image (uint8 (C, H, W) images).
    ``progress(config name)`` is called after every run (image or single layer); ``max_polls``
    bounds every wait for DONE (STATUS reads).

    Returns ``{"load": counters of the one-time program load, "configs": [...]}``; each config
    has ``images`` (per image: ``counters`` of the whole-network run and image load, ``layer_cycles``,
    ``logits``) and ``layers`` (per descriptor: the counters of running it alone on the last image).
    """
    await drv.clear_counters()
    await drv.load_program(program)
    load = await drv.read_counters()
    out = {"load": load, "configs": []}
    for cfg in configs:
        if cfg.uniform:
            await drv.set_width(cfg.uniform)  # one register write: no reload
        else:
            await drv.set_groups(program, cfg.groups)
        runs = []
        for img in images:
            await drv.clear_counters()
            await drv.load_image(image_bytes(program, img))
            await drv.run(0, program.num_layers, max_polls)
            counters = await drv.read_counters()
            runs.append(dict(counters=counters, layer_cycles=await drv.read_layer_cycles(program.num_layers),
                             logits=(await drv.read_logits(classes)).tolist()))
            if progress:
                progress(cfg.name)
        layers = []
        for j in range(program.num_layers):
            await drv.clear_counters()
            await drv.run(j, 1, max_polls)
            layers.append(await drv.read_counters())
            if progress:
                progress(cfg.name)
        out["configs"].append(dict(name=cfg.name, groups=list(cfg.groups), uniform=cfg.uniform,
                                   images=runs, layers=layers))
    return out


def steps(configs, images, program) -> int:
    """How many times ``measure`` calls ``progress``."""
    return len(configs) * (len(images) + program.num_layers)


def to_jsonable(x):
    if isinstance(x, dict):
        return {k: to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    return x


async def configure(drv, program, cfg: RunConfig) -> None:
    """Switch the width: one WIDTH write for a uniform width, WIDTH = 0 and one CHAN write per
    descriptor for a per-layer profile (``sw.frames.switch_writes`` counts them)."""
    if cfg.uniform:
        await drv.set_width(cfg.uniform)
    else:
        await drv.set_groups(program, cfg.groups)


async def frame(drv, program, image, classes: int, max_polls: int = 100_000) -> dict:
    """One frame of a runtime, the protocol ``sw.frames`` charges: clear the counters, load the
    image, start the whole network, wait for DONE, read the logits and every counter."""
    await drv.clear_counters()
    await drv.load_image(image_bytes(program, image))
    await drv.run(0, program.num_layers, max_polls)
    logits = (await drv.read_logits(classes)).tolist()
    return dict(counters=await drv.read_counters(), logits=logits)


async def measure_frames(drv, program, frames, classes: int, progress=None, max_polls: int = 100_000) -> dict:
    """A runtime's frames on one loaded program: ``frames`` is a list of (RunConfig, image); the
    width is written only when it changes (no reload). Returns ``{"load": counters, "frames":
    [{"counters", "logits", "switched"}]}``."""
    await drv.clear_counters()
    await drv.load_program(program)
    out = {"load": await drv.read_counters(), "frames": []}
    current = None
    for cfg, img in frames:
        switched = cfg != current
        if switched:
            await configure(drv, program, cfg)
            current = cfg
        out["frames"].append(dict(await frame(drv, program, img, classes, max_polls), switched=switched))
        if progress:
            progress(cfg.name)
    return out
