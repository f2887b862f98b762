"""Pinned CPU kernels: the float computation of training, meant to give the same bits on any
x86-64 machine.

PyTorch picks its CPU kernels by the processor: ATen's vectorised loops by instruction set (AVX2,
AVX-512), oneDNN's convolutions by instruction set and cache sizes, MKL's GEMM by processor, and
the way a reduction is split by the thread count. Each choice changes the order of float sums, so
two machines train two slightly different networks from the same seed. ``pin()`` fixes all of
them:

* ``ATEN_CPU_CAPABILITY=default``: ATen's portable (non-vectorised) kernels;
* ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility, one code path on every
  processor;
* oneDNN off: convolutions go through ATen's im2col + MKL GEMM;
* ``torch.use_deterministic_algorithms(True)`` and a fixed thread count (``THREADS``, whatever
  the machine has): a convolution's weight gradient (MKL's GEMM summing over the batch and the
  pixels) splits its sum by the thread count, so 1 and 2 threads give different bits for some of
  the narrow profiles' shapes, while a given count gives the same bits every time.

What it costs and where it was checked: docs/training.md, "Reproducing". It must run before
PyTorch's first kernel (both variables are read once, on first use); ``pin`` checks that it did.
"""
from __future__ import annotations

import os

import numpy as np
import torch

ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
THREADS = 2


class KernelError(RuntimeError):
    pass


def pin(threads: int = THREADS) -> None:
    os.environ.update(ENV)
    torch.backends.mkldnn.enabled = False
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    if torch.backends.cpu.get_cpu_capability() != "DEFAULT":
        raise KernelError("PyTorch chose its CPU kernels before model.kernels.pin() ran; "
                          "call pin() before any tensor operation")


def describe() -> dict:
    """What the run's kernels were, for its report."""
    return dict(pinned=torch.backends.cpu.get_cpu_capability() == "DEFAULT"
                and not torch.backends.mkldnn.enabled,
                cpu_capability=torch.backends.cpu.get_cpu_capability(),
                threads=torch.get_num_threads(), torch=torch.__version__, numpy=np.__version__)
