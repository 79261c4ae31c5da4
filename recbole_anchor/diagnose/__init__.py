"""Latent-geometry diagnostics of VAE recommenders (``python -m recbole_anchor.diagnose``).

Measures, on a seeded sample of users of a trained AnchorMultVAE, AnchorRecVAE,
MultiVAE or RecVAE checkpoint and per activity group, the mechanisms the paper describes:

- :mod:`.geometry`: closed-form W2 between user posteriors against the input distance;
- :mod:`.drift`: how far posteriors and latent neighbours move under input masking,
  and the predicted anchor shrinkage :math:`\\tau^2`;
- :mod:`.collapse`: per-dimension KL, active units, posterior variance, distance to
  the anchor centroid;

with :mod:`.posterior` (one adapter per model family; the anchor term read from the
plugin's shared anchor component), :mod:`.activity` (user sample and rows; the activity
groups are :mod:`recbole_anchor.evaluator.activity`'s), :mod:`.report` (all numbers
of one model), :mod:`.plots` (PNG files).
"""
