"""Tune AnchorMultVAE or any RecBole model on Optuna (or hyperopt), RecBole-style.

    python run_hyper_anchor.py --model=AnchorMultVAE --dataset=ml-100k \\
        --params_file=properties/hyper/AnchorMultVAE.hyper --n_trials=20

Workers started with the same ``--storage`` and ``--study_name`` (on any machines)
share one study; see README.md, "Tuning on several machines".
"""
import sys

from recbole_anchor.tuning.cli import main

if __name__ == "__main__":
    sys.exit(main())
