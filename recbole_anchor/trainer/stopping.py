"""When training stops: the config key ``stopping_rule``.

- ``recbole`` (the default): RecBole's early stopping (``recbole.utils.early_stopping``)
  unchanged: a run ends ``stopping_step`` evaluations after its best validation score.
- ``trend``: the same, except that a stop is held back while the least-squares slope of
  the last ``3 * stopping_step`` validation scores still points the better way, so a
  score that is still rising under noise is not cut off; on a plateau or a decline
  RecBole's rule applies unchanged. The plugin's dataset presets choose ``trend`` for
  every model, so the baselines of a comparison stop by the same rule as the plugin's
  models.

A stop is held back by raising ``stopping_step`` for that one evaluation, so
``cur_step`` still counts the evaluations since the best and RecBole's closing line
"best eval result in epoch N" stays right. The scores so far
(``trainer.valid_score_history``) are saved in checkpoints, so a resumed run applies
the rule to the same history.
"""
import numpy as np

from recbole_anchor.config_checks import invalid

STOPPING_RULES = ("recbole", "trend")


def stopping_rule(config):
    """The config's ``stopping_rule`` (``recbole`` when unset); a one-line error for
    any other value."""
    rule = config["stopping_rule"] or "recbole"
    if rule not in STOPPING_RULES:
        raise invalid("stopping_rule", rule, f"one of {list(STOPPING_RULES)}")
    return rule


def still_improving(scores, bigger=True):
    """Whether the least-squares slope of ``scores`` (in evaluation order) points the
    better way."""
    if len(scores) < 2:
        return False
    steps = np.arange(len(scores), dtype=float)
    slope = np.polyfit(steps, np.asarray(scores, dtype=float), 1)[0]
    return slope > 0 if bigger else slope < 0


def after_validation(trainer, valid_score, rule):
    """Record ``valid_score``; under ``rule == "trend"``, set ``trainer.stopping_step``
    for RecBole's early-stopping call that follows (which stops once
    ``cur_step + 1 > stopping_step``)."""
    history = trainer.__dict__.setdefault("valid_score_history", [])
    history.append(float(valid_score))
    base = trainer.__dict__.setdefault("base_stopping_step", trainer.stopping_step)
    if rule != "trend":
        return
    bigger = trainer.valid_metric_bigger
    best = trainer.best_valid_score
    improved = valid_score >= best if bigger else valid_score <= best
    hold = (
        not improved
        and trainer.cur_step >= base
        and still_improving(history[-3 * base :], bigger)
    )
    trainer.stopping_step = trainer.cur_step + 1 if hold else base
