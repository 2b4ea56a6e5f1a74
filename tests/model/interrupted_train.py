"""``model.train`` interrupted in every process at fine-tuning step 3, as Ctrl-C would (torchrun
passes SIGINT on to each): what ``tests/model/test_distributed.py`` runs under torchrun."""

from __future__ import annotations

import sys

from common.cli import run
from model import train
from model.trainer import Trainer

_loss = Trainer._loss


def _interrupted_at_step_3(self, stage, batch, gen):
    if stage == "finetune" and self.state.step == 3:
        raise KeyboardInterrupt
    return _loss(self, stage, batch, gen)


if __name__ == "__main__":
    Trainer._loss = _interrupted_at_step_3
    run(train.main, sys.argv[1:])
