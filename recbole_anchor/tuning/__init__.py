"""Hyperparameter tuning of plugin and RecBole models.

- :mod:`.space`: RecBole's ``.hyper`` search spaces and their Optuna distributions;
- :mod:`.optuna_search`: one Optuna study shared by any number of workers
  (``run_study``);
- :mod:`.storage`: the study storages (database URL or journal file) and heartbeats;
- :mod:`.hyperopt_search`: RecBole's one-process ``HyperTuning`` on hyperopt;
- :mod:`.outputs`: the trials table, best yaml and result file;
- :mod:`.cli`: ``run_hyper_anchor.py``.
"""
