"""Comparison mode: several models over several seeds, one table with error bars and
paired significance tests (``run_recbole_anchor.py --model=A,B --seed=1,2,3``)."""
