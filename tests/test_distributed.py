"""Multi-process data-parallel training (RecBole's nproc) for plugin models, on the CPU
with gloo (``recbole_anchor.compat.cpu_distributed``)."""
import socket

import pytest
import torch

from recbole_anchor.config import Config
from recbole_anchor.quick_start import run_recbole_anchor
from recbole_anchor.registry import get_trainer

from conftest import FAST, prepare

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or torch.cuda.is_available(),
    reason="exercises the gloo path, taken when CUDA is absent",
)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return str(sock.getsockname()[1])


def test_a_process_group_on_the_cpu_uses_gloo_and_cpu_ddp(recbole_dir):
    port = _free_port()
    config = Config(
        "AnchorMultVAE",
        "ml-100k",
        config_dict={**FAST, "local_rank": 0, "world_size": 1, "nproc": 1, "offset": 0,
                     "ip": "localhost", "port": port},
        cmd_args=[],
    )
    try:
        assert torch.distributed.get_backend() == "gloo"
        assert config["device"].type == "cpu" and config["single_spec"] is False
        _, (train_data, _, _) = prepare(config)
        model = config.model_class(config, train_data._dataset)
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        assert trainer.distributed_model.device_ids is None
        ddp = trainer.distributed_model
        assert not getattr(ddp, "forward_sync_buffers", ddp.broadcast_buffers)
        loss = trainer._train_epoch(train_data, 0)
        assert all(torch.isfinite(torch.tensor(loss)))
    finally:
        torch.distributed.destroy_process_group()


def test_two_processes_match_one(recbole_dir):
    """nproc=2 trains on halves of each batch with averaged gradients and averages
    the two halves' metrics: the same model, up to the noise draws."""
    settings = {
        **FAST,
        "epochs": 3,
        "train_batch_size": 1000,  # one batch per epoch: the halves make the same batch
        "stopping_step": 10,
        "seed": 7,
    }
    single = run_recbole_anchor("AnchorMultVAE", "ml-100k", config_dict=dict(settings), cmd_args=[])
    double = run_recbole_anchor(
        "AnchorMultVAE", "ml-100k", config_dict=dict(settings), cmd_args=[],
        nproc=2, port=_free_port(),
    )
    assert double is not None
    assert set(double["test_result"]) == set(single["test_result"])
    for metric, value in single["test_result"].items():
        assert double["test_result"][metric] == pytest.approx(value, abs=0.02), metric


def test_command_line_refuses_bad_process_counts(capsys):
    from recbole_anchor.cli import EXIT_BAD_INPUT, main

    assert main(["--nproc=0"]) == EXIT_BAD_INPUT
    assert "--nproc=0" in capsys.readouterr().err
    assert main(["--model=AnchorMultVAE,MultiVAE", "--nproc=2"]) == EXIT_BAD_INPUT
    assert "--nproc runs one model" in capsys.readouterr().err
