"""The stopping rules (``stopping_rule: recbole`` or ``trend``) in RecBole's fit loop."""
import numpy as np
import pytest
from recbole.trainer import Trainer
from recbole.utils import early_stopping

from recbole_anchor.errors import InvalidConfigError
from recbole_anchor.trainer import with_training_features
from recbole_anchor.trainer.stopping import still_improving, stopping_rule

from conftest import make_config


class _FitLoop(with_training_features(Trainer)):
    """The parts of a plugin trainer that RecBole's fit loop's stopping uses."""

    def __init__(self, scores, stopping_step, rule="trend"):
        self.stopping_rule = rule
        self.scores = iter(scores)
        self.valid_metric = "ndcg@100"
        self.valid_metric_bigger = True
        self.best_valid_score = -np.inf
        self.cur_step = 0
        self.stopping_step = stopping_step

    def evaluate(self, valid_data, load_best_model=False, show_progress=False):
        return {"ndcg@100": next(self.scores)}

    def run(self):
        """Evaluations until RecBole's fit loop would stop (or the scores run out)."""
        for epoch in range(10**6):
            try:
                score, _ = self._valid_epoch(None)
            except StopIteration:
                return None
            self.best_valid_score, self.cur_step, stop, _ = early_stopping(
                score, self.best_valid_score, self.cur_step, self.stopping_step, True
            )
            if stop:
                return epoch


def test_does_not_stop_while_still_rising():
    # A slow rise under noise: 10-evaluation stretches without a new best occur.
    rng = np.random.default_rng(0)
    scores = 0.30 + 0.0005 * np.arange(400) + rng.normal(0, 0.005, 400)
    assert _FitLoop(scores, stopping_step=10).run() is None
    plain_stop = None
    best, step = -np.inf, 0
    for epoch, score in enumerate(scores):
        best, step, stop, _ = early_stopping(score, best, step, 10, True)
        if stop:
            plain_stop = epoch
            break
    assert plain_stop is not None  # RecBole's rule alone ends this run early
    assert _FitLoop(scores, stopping_step=10, rule="recbole").run() == plain_stop


def test_recbole_rule_is_the_default_and_the_presets_choose_trend():
    assert stopping_rule(make_config("MultiVAE", dataset="no-preset")) == "recbole"
    assert make_config("MultiVAE", dataset="ml-100k")["stopping_rule"] == "trend"
    for model in ("AnchorMultVAE", "EASE"):
        assert make_config(model, dataset="ml-1m", data_path="unused")["stopping_rule"] == "trend"
    # RecBole's own Trainer, used by RecBole's run_recbole, keeps RecBole's stopping.
    assert Trainer._valid_epoch.__module__ == "recbole.trainer.trainer"
    with pytest.raises(InvalidConfigError, match=r"stopping_rule='slope'.*one of \['recbole', 'trend'\]"):
        make_config("MultiVAE", stopping_rule="slope")


def test_stops_on_a_plateau_and_a_decline():
    rng = np.random.default_rng(1)
    rise = np.linspace(0.2, 0.4, 50)
    plateau = np.concatenate([rise, 0.4 + rng.normal(0, 0.005, 200)])
    decline = np.concatenate([rise, np.linspace(0.4, 0.3, 200)])
    assert 50 + 10 <= _FitLoop(plateau, stopping_step=10).run() <= 50 + 60
    assert 50 + 10 <= _FitLoop(decline, stopping_step=10).run() <= 50 + 30


def test_the_best_epoch_recbole_reports_is_the_best_even_after_a_hold():
    """RecBole's closing line names epoch - cur_step as the best; after the rule held a
    stop back (a rise, then a decline), that is still the epoch of the best score."""
    scores = np.concatenate([np.linspace(0.2, 0.4, 50), np.linspace(0.399, 0.3, 200)])
    loop = _FitLoop(scores, stopping_step=10)
    stop = loop.run()
    assert stop > 50 + 10  # held back past RecBole's own stop
    assert stop - loop.cur_step == int(np.argmax(scores[: stop + 1])) == 49


def test_still_improving():
    assert still_improving([1, 2, 3]) and not still_improving([3, 2, 1])
    assert still_improving([3, 2, 1], bigger=False)
    assert not still_improving([1])
