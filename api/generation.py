"""The comment generator behind ``POST /generate``: found, loaded once, or why not.

The model code (:mod:`model.generator`) is imported only when a checkpoint is configured, so
the API starts, and serves everything else, on a machine that has never trained a model.
A missing or broken checkpoint does not stop the API: ``/health`` and ``POST /generate``
say why there is no model. A generation whose request has timed out stops at the model's
next module call (:func:`stop_at_deadline`) instead of running on in its abandoned thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from api.deadline import check_deadline
from api.schemas import PartHealth
from api.settings import Settings
from common.errors import UserError
from retrieval.context import RetrievalContext

if TYPE_CHECKING:  # imported only when a checkpoint is configured (see above)
    from torch import nn

    from model.generator import Generator

log = logging.getLogger(__name__)
R = TypeVar("R")

NOT_CONFIGURED = (
    "not configured: no checkpoint under $DANMAKU_DATA/checkpoints/ and DANMAKU_CHECKPOINT "
    "is not set (python -m model.train writes checkpoints)"
)


def load_generator(
    settings: Settings, ctx: RetrievalContext
) -> tuple[Generator | None, PartHealth]:
    """The generator of the configured checkpoint, or None and the reason there is none."""
    directory = settings.checkpoint_dir()
    if directory is None:
        return None, PartHealth(ok=False, detail=NOT_CONFIGURED)
    from model.generator import Generator

    try:
        generator = Generator.load(directory, ctx, device=settings.device)
    except UserError as e:
        log.error("no model: %s", e)
        return None, PartHealth(ok=False, detail=f"cannot load {directory}: {e}")
    stop_at_deadline(generator.model)
    log.info("generator loaded from %s on %s", directory, settings.device)
    return generator, PartHealth(ok=True, detail=f"loaded from {directory} on {settings.device}")


#: The one thread that loads the model and runs every generation (``POST /generate``, the
#: live sessions). PyTorch's CPU kernels run on an OpenMP team of the thread that calls them,
#: and generations handed from one worker thread to another ran slower than those of one
#: thread (docs/results-2026-12-06.md), so the model stays on one thread.
MODEL_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="danmaku-model")


def in_model_threads(settings: Settings, fn: Callable[..., R]) -> Callable[..., R]:
    """``fn`` run with ``settings.model_threads`` intra-op threads (``API_MODEL_THREADS``,
    default one: on 2 cores a generation of the API was faster with one than with two,
    docs/results-2026-12-06.md) in the thread that calls it: OpenMP's thread count is a
    setting of each calling thread."""

    def run(*args: object) -> R:
        import torch

        if torch.get_num_threads() != settings.model_threads:
            torch.set_num_threads(settings.model_threads)
        return fn(*args)

    return run


def stop_at_deadline(model: nn.Module) -> None:
    """Make every module of ``model`` check the running request's deadline before it runs:
    beam search is many small module calls, so a timed-out request stops within one of them
    (:class:`api.deadline.DeadlinePassed`). Outside a request the check does nothing, so the
    model works as before for any other caller."""
    for module in model.modules():
        module.register_forward_pre_hook(lambda *_: check_deadline())
