"""The training curves (:mod:`model.train_log`): ``metrics.csv`` always, TensorBoard events in
a folder when asked, and a resumed run that never holds a step twice in either."""

from __future__ import annotations

import math

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from model.train_log import METRICS_CSV, TrainingLog, read_log


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(e.step, round(e.value, 6)) for e in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def test_steps_and_dev_metrics_go_to_the_csv_and_tensorboard(tmp_path):
    log = TrainingLog(tmp_path, tmp_path / "tb")
    log.step("pretrain", 1, 1, 5.0, 1e-3)
    log.step("finetune", 1, 2, 4.0, 5e-4)
    log.dev("finetune", 1, 2, 0.25)
    log.dev("finetune", 1, 2, math.nan)  # no dev split: nothing to draw
    log.close()
    rows = read_log(tmp_path / METRICS_CSV)
    assert [(r["stage"], r["global_step"], r["loss"], r["dev_mrr"]) for r in rows] == [
        ("pretrain", 1.0, 5.0, None),
        ("finetune", 2.0, 4.0, None),
        ("finetune", 2.0, None, 0.25),
    ]
    tb = scalars(tmp_path / "tb")
    assert tb["pretrain/loss"] == [(1, 5.0)] and tb["finetune/lr"] == [(2, 5e-4)]
    assert tb["dev/mrr"] == [(2, 0.25)]


def test_a_resumed_run_drops_what_it_does_again(tmp_path):
    log = TrainingLog(tmp_path, tmp_path / "tb")
    for step in range(1, 6):
        log.step("finetune", step, step, 10.0 - step, 1e-3)
    log.close()  # interrupted after step 5; its last saved state was at step 3
    log = TrainingLog(tmp_path, tmp_path / "tb", done=3)
    for step in range(4, 7):
        log.step("finetune", step, step, 1.0, 1e-3)
    log.close()
    rows = read_log(tmp_path / METRICS_CSV)
    assert [r["global_step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in rows] == [9.0, 8.0, 7.0, 1.0, 1.0, 1.0]
    assert [v for _, v in scalars(tmp_path / "tb")["finetune/loss"]] == [9, 8, 7, 1, 1, 1]


def test_a_new_run_starts_a_new_csv(tmp_path):
    (tmp_path / METRICS_CSV).write_text("something else\n1,2\n", encoding="utf-8")
    TrainingLog(tmp_path).close()
    assert read_log(tmp_path / METRICS_CSV) == []
