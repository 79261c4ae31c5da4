import sys

import pytest


@pytest.fixture
def recbole_dir(tmp_path, monkeypatch):
    """Run RecBole in a temporary folder (it writes ./log, ./saved) with no CLI args."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["pytest"])
    return tmp_path
