"""The model's thread: every generation runs on one thread (api.generation.MODEL_THREAD), with
API_MODEL_THREADS intra-op threads when set; a bad value is refused at start-up."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
import torch
from pydantic import ValidationError

from api.deps import run_on_model
from api.generation import in_model_threads
from api.settings import Settings


@pytest.mark.parametrize("threads", [1, 3])
def test_the_calling_thread_runs_with_the_setting(threads) -> None:
    settings = Settings(API_MODEL_THREADS=threads)
    seen = in_model_threads(settings, lambda x: (x, torch.get_num_threads()))
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(seen, "job").result() == ("job", threads)


def test_generations_run_on_the_one_model_thread() -> None:
    settings = Settings()

    async def seen() -> set[tuple[str, int]]:
        def where() -> tuple[str, int]:
            return threading.current_thread().name, torch.get_num_threads()

        return {await run_on_model(settings, where) for _ in range(5)}

    ((name, threads),) = anyio.run(seen)
    assert name.startswith("danmaku-model") and threads == 1


def test_one_thread_by_default() -> None:
    assert Settings().model_threads == 1


def test_zero_threads_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(API_MODEL_THREADS=0)
