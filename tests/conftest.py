import sys

import pytest
import torch
from recbole.utils import init_seed

import recbole_anchor  # noqa: F401  (applies the RecBole workarounds)
from recbole_anchor.config import Config
from recbole_anchor.data.loading import create_dataset, data_preparation

# Small, fast settings for tests on the bundled ml-100k.
FAST = {
    "show_progress": False,
    "state": "ERROR",
    "eval_batch_size": 2_000_000,
    "checkpoint_dir": "saved",
}


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    """RecBole's Config reads sys.argv; keep pytest's own flags out of it."""
    monkeypatch.setattr(sys, "argv", ["pytest"])


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in a temporary folder: RecBole writes ./log, ./saved, ./log_tensorboard."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_config(model="AnchorMultVAE", dataset="ml-100k", **overrides):
    return Config(model=model, dataset=dataset, config_dict={**FAST, **overrides}, cmd_args=[])


def seeded_steps(model, optimizer, steps=5, batch=200, seed=11):
    """Losses of ``steps`` optimizer steps on batches of ``batch`` users drawn by a
    generator seeded with ``seed`` (the same batches for every model)."""
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        users = torch.randperm(model.n_users - 1, generator=generator)[:batch] + 1
        optimizer.zero_grad()
        loss = sum(model.calculate_loss({model.USER_ID: users}))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def prepare(config):
    """Dataset and (train, valid, test) loaders for a config, seeded as RecBole's
    quick start does."""
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    return dataset, data_preparation(config, dataset)


@pytest.fixture(scope="session")
def ml100k():
    """AnchorMultVAE config, dataset and loaders on ml-100k, built once."""
    config = make_config()
    dataset, loaders = prepare(config)
    return config, dataset, loaders


@pytest.fixture
def recbole_dir(tmp_path, monkeypatch):
    """Run RecBole in a temporary folder (it writes ./log, ./saved) with no CLI args."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["pytest"])
    return tmp_path
