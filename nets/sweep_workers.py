"""What a sweep's local Dask workers are set up with (imported only when a sweep starts them)."""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin
from threadpoolctl import threadpool_limits


class OneBlasThread(WorkerPlugin):
    """Matrix products on one thread in each local worker (a worker per core). Forked workers
    inherit the BLAS library as the driver loaded it, so the environment variables that limit
    its threads no longer reach it; threadpoolctl sets the limit instead."""

    name = "one-blas-thread"
    idempotent = True

    def setup(self, worker) -> None:
        threadpool_limits(limits=1, user_api="blas")
