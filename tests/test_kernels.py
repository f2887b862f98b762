"""Pinned CPU kernels (model/kernels.py): a short training run of per-layer profiles gives the
same bits whichever instruction sets MKL and ATen are allowed and whatever thread count the
environment asks for, so the result does not depend on the processor it runs on (the part of
that claim one machine can check)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from model import kernels

SCRIPT = r"""
import hashlib
import numpy as np
from model import kernels
kernels.pin()
import torch
from model.config import REFERENCE
from model.data import load_split
from model.net import DynNet
from model.train import subnet_plan, train_net
train = load_split("train").take(np.arange(1280))
torch.manual_seed(0)
net = DynNet(REFERENCE)
train_net(net, train, 1, subnet_plan("sandwich", 4, 3, 2), 2, 3e-3, 128, 1, "x")
state = b"".join(v.detach().numpy().tobytes() for v in net.state_dict().values())
print(kernels.describe()["cpu_capability"], torch.get_num_threads(), hashlib.sha256(state).hexdigest())
"""


def _run(env: dict, subprocess_env: dict) -> str:
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                       env={**subprocess_env, **env})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def reference(subprocess_env, fmnist_dir) -> str:
    out = _run({}, subprocess_env)
    assert out.startswith(f"DEFAULT {kernels.THREADS} "), out
    return out


@pytest.mark.parametrize("env", [{"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
                                 {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
                                 {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "3", "MKL_CBWR": "AUTO"}],
                         ids=["mkl-sse4.2", "avx2", "threads"])
def test_pinned_training_ignores_instruction_sets_and_thread_settings(env, reference, subprocess_env):
    assert _run(env, subprocess_env) == reference, env
