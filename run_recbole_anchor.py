"""Train and test AnchorMultVAE or any RecBole model, RecBole-style.

    python run_recbole_anchor.py --model=AnchorMultVAE --dataset=ml-100k --epochs=2
"""
import sys

from recbole_anchor.cli import main

if __name__ == "__main__":
    sys.exit(main())
