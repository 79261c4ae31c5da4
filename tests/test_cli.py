"""The command line, run as a new user runs it: a subprocess in a fresh folder."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "run_recbole_anchor.py")


def run_cli(cwd, *args):
    return subprocess.run(
        [sys.executable, SCRIPT, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("model", ["AnchorMultVAE", "MultiVAE", "EASE", "RecVAE"])
def test_models_train_and_print_test_metrics(tmp_path, model):
    result = run_cli(tmp_path, f"--model={model}", "--dataset=ml-100k", "--epochs=1",
                     "--eval_batch_size=2000000")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"test result ({model} on ml-100k):" in result.stdout
    assert "ndcg@10" in result.stdout
    assert list((tmp_path / "saved").glob(f"{model}-*.pth")), "no checkpoint written"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model=NoSuchModel"], "unknown model 'NoSuchModel'"),
        (["--dataset=no-such-dataset"], "dataset 'no-such-dataset' not found"),
        (["--dataset=msd"], "RecBole has no download for it; pass --data_path=DIR where DIR/msd/ "
         "holds its atomic files, or convert the raw files: python -m recbole_anchor.data.convert "
         "msd train_triplets.txt --output dataset"),
        (["--dataset=ml-20m", "--download=False"], "download is False; pass --download=True to "
         "download it from https://recbole.s3-accelerate.amazonaws.com/ProcessedDatasets/MovieLens/ml-20m.zip"),
        (["--anchor_weight=-1"], "invalid anchor_weight=-1"),
        (["--dropout_prob=1.5"], "invalid dropout_prob=1.5"),
        (["--latent_dimension=0"], "invalid latent_dimension=0"),
        (["--config_files=missing.yaml"], "config file 'missing.yaml' does not exist"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path, args, message):
    result = run_cli(tmp_path, *args, "--epochs=1")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in lines[0]
