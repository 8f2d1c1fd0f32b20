"""Shared test set-up: hypothesis profiles and float64 helpers.

Profiles (choose with HYPOTHESIS_PROFILE=ci|dev|thorough; CI=true selects ``ci``):
  ci        derandomized (replayable), no deadline, a moderate number of examples
  dev       the default locally: fewer examples, quick feedback
  thorough  many examples, for hunting bugs before a release
"""

import os

# Tiny matrices run fastest (and sum in one fixed order) on one BLAS thread. The variable
# reaches notebook kernels started by nbmake; threadpoolctl covers this process, where
# NumPy may already be loaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(limits=1, user_api="blas")

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", derandomize=True, max_examples=40, print_blob=True, **_common)
settings.register_profile("dev", max_examples=20, **_common)
settings.register_profile("thorough", max_examples=500, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def rng():
    """A fresh, fixed generator for tests that need random numbers outside hypothesis."""
    return np.random.default_rng(1234)
