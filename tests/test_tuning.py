"""Tuning: RecBole's HyperTuning on today's hyperopt, for plugin and RecBole models."""
import csv
import os

import pytest
import yaml
from recbole.trainer.hyper_tuning import HyperTuning

from recbole_anchor.errors import InvalidConfigError
from recbole_anchor.resources import properties_dir
from recbole_anchor.tuning.cli import main
from recbole_anchor.tuning.hyperopt_search import AnchorHyperTuning, as_lists, check_exhaustive_space
from recbole_anchor.tuning.space import read_params_file

LIST_SPACE = "mlp_hidden_size choice [[600],[300,300],[]]\nlearning_rate choice [0.01,0.001]\n"


def _objective(scores):
    def objective(config_dict, config_file_list):
        score = scores(config_dict)
        if score is None:
            raise RuntimeError("this configuration diverged")
        return {"model": "X", "best_valid_score": score, "valid_score_bigger": True,
                "best_valid_result": {"ndcg@10": score}, "test_result": {"ndcg@10": score}}
    return objective


def test_list_valued_choices_parse_and_come_back_as_lists(tmp_path):
    params = tmp_path / "space.hyper"
    params.write_text(LIST_SPACE)
    seen = []
    tuner = AnchorHyperTuning(
        _objective(lambda c: seen.append(c) or c["learning_rate"]),
        params_file=str(params), algo="exhaustive",
    )
    assert tuner.max_evals == 6  # 3 x 2 combinations
    tuner.run()
    assert len(seen) == 6
    assert {tuple(c["mlp_hidden_size"]) for c in seen} == {(600,), (300, 300), ()}
    assert all(isinstance(c["mlp_hidden_size"], list) for c in seen)


@pytest.mark.parametrize("algo", ["exhaustive", "random", "bayes"])
def test_every_algorithm_runs_on_current_hyperopt(tmp_path, algo):
    params = tmp_path / "space.hyper"
    params.write_text("learning_rate choice [0.01,0.001,0.0001]\n")
    tuner = AnchorHyperTuning(_objective(lambda c: c["learning_rate"]), params_file=str(params),
                              algo=algo, max_evals=3, early_stop=10)
    tuner.run()
    assert len(tuner.score_list) == 3
    assert tuner.best_score == max(tuner.score_list)
    assert tuner.best_params["learning_rate"] == tuner.best_score
    if algo == "exhaustive":
        assert sorted(tuner.score_list) == [0.0001, 0.001, 0.01]


def test_a_failed_trial_is_recorded_and_the_search_goes_on(tmp_path):
    params = tmp_path / "space.hyper"
    params.write_text("learning_rate choice [0.01,0.5,0.001]\n")
    trials = tmp_path / "trials.csv"
    tuner = AnchorHyperTuning(
        _objective(lambda c: None if c["learning_rate"] == 0.5 else c["learning_rate"]),
        trials_file=str(trials), params_file=str(params), algo="exhaustive",
    )
    tuner.run()
    rows = list(csv.DictReader(open(trials)))
    assert len(rows) == 3
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and "diverged" in failed[0]["reason"]
    assert tuner.best_params == {"learning_rate": 0.01}


def test_exhaustive_search_refuses_continuous_parameters():
    tuner = HyperTuning(lambda *a: None, params_dict={"uniform": {"dropout_prob": [0.1, 0.5]}},
                        algo="random")
    with pytest.raises(InvalidConfigError, match="dropout_prob"):
        check_exhaustive_space(tuner.space)


def test_shipped_search_spaces_parse():
    folder = os.path.join(properties_dir(), "hyper")
    for name in os.listdir(folder):
        params = read_params_file(os.path.join(folder, name))
        if name.startswith("Anchor"):
            assert any(p[0] == "anchor_weight" and p[1] == "loguniform" for p in params)
        HyperTuning(lambda *a: None, params_file=os.path.join(folder, name), algo="random")


def test_as_lists_turns_tuples_into_lists():
    assert as_lists({"a": (1, (2, 3)), "b": 0.1}) == {"a": [1, [2, 3]], "b": 0.1}


def test_two_trials_on_ml100k_write_best_and_table(workdir):
    params = workdir / "space.hyper"
    params.write_text("anchor_weight loguniform -4,0\nmlp_hidden_size choice [[64],[32,32]]\n")
    status = main(["--tool=hyperopt", "--model=AnchorMultVAE", "--dataset=ml-100k",
                   f"--params_file={params}", "--algo=random", "--max_evals=2", "--output_file=out/tune.result",
                   "--epochs=1", "--eval_batch_size=2000000", "--show_progress=False"])
    assert status == 0
    rows = list(csv.DictReader(open(workdir / "out" / "tune.trials.csv")))
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    best = yaml.safe_load(open(workdir / "out" / "tune.best.yaml"))
    assert best["best_params"]["mlp_hidden_size"] in ([64], [32, 32])
    assert 0 < best["test_result"]["ndcg@100"] <= 1  # ml-100k's preset: NDCG@100
    assert (workdir / "out" / "tune.result").exists()


def test_ray_is_refused_in_one_line_pointing_to_optuna(workdir, capsys):
    params = workdir / "space.hyper"
    params.write_text("learning_rate choice [0.01]\n")
    status = main(["--tool=ray", "--model=AnchorMultVAE", "--dataset=ml-100k",
                   f"--params_file={params}"])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Ray <= 2.6.3" in err[0] and "--tool=optuna" in err[0]
    assert "[ray]" not in err[0]
