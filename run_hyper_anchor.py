"""Tune AnchorMultVAE or any RecBole model, RecBole-style (RecBole's run_hyper.py flags).

    python run_hyper_anchor.py --model=AnchorMultVAE --dataset=ml-100k \\
        --params_file=properties/hyper/AnchorMultVAE.hyper --algo=bayes --max_evals=20
"""
import sys

from recbole_anchor.tuning_cli import main

if __name__ == "__main__":
    sys.exit(main())
