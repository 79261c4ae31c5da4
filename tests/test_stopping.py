"""The trend-aware stopping rule (compat.trend_aware_stopping) in RecBole's fit loop."""
import numpy as np
from recbole.trainer import Trainer
from recbole.utils import early_stopping

from recbole_anchor.compat import still_improving


class _FitLoop:
    """The parts of RecBole's Trainer that its fit loop's stopping uses."""

    def __init__(self, scores, stopping_step):
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
                score, _ = Trainer._valid_epoch(self, None)
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
