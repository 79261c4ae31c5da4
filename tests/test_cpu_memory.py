"""keep_freed_memory: a training step's large temporaries reuse freed memory instead of
faulting in fresh pages every step; the numbers computed do not change."""
import subprocess
import sys
import textwrap

import pytest

from recbole_anchor.trainer.memory import keep_freed_memory

from conftest import make_config

PROBE = textwrap.dedent(
    """
    import resource, sys, torch
    from recbole_anchor.trainer.memory import keep_freed_memory
    if sys.argv[1] == "on":
        assert keep_freed_memory()
    total = 0.0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for step in range(20):
        scratch = torch.empty(12_000_000)  # 48 MB, like ML-20M's logits
        scratch.fill_(step)
        total += float(scratch[-1])
        del scratch
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(faults, total)
    """
)


def _probe(mode):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    faults, total = done.stdout.split()
    return int(faults), float(total)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_freed_large_tensors_are_reused_instead_of_faulted_in_again():
    off_faults, off_total = _probe("off")
    on_faults, on_total = _probe("on")
    pages = 48_000_000 // 4096
    assert off_faults > 10 * pages  # a fresh 48 MB of pages every step
    assert on_faults < 3 * pages  # faulted in once, then reused
    assert on_total == off_total


def test_on_unless_turned_off_and_checked_as_a_boolean():
    from recbole_anchor.trainer.memory import apply_memory_settings
    from recbole_anchor.errors import InvalidConfigError

    assert apply_memory_settings(make_config(keep_freed_memory=False)) is False
    assert apply_memory_settings(make_config()) is keep_freed_memory()
    with pytest.raises(InvalidConfigError, match="keep_freed_memory"):
        make_config(keep_freed_memory="no")
