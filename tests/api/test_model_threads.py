"""API_MODEL_THREADS: a generation's worker thread runs with that many intra-op threads, and a
bad value is refused at start-up like any other setting."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from pydantic import ValidationError

from api.generation import in_model_threads
from api.settings import Settings


@pytest.mark.parametrize("threads", [1, 3])
def test_the_worker_thread_runs_with_the_setting(threads) -> None:
    settings = Settings(API_MODEL_THREADS=threads)
    seen = in_model_threads(settings, lambda x: (x, torch.get_num_threads()))
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(seen, "job").result() == ("job", threads)


def test_zero_threads_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(API_MODEL_THREADS=0)
