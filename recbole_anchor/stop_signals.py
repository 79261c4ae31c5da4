"""How a command is stopped: Ctrl-C, ``kill`` (SIGTERM) and ``kill -INT`` end it alike.

Every entry point handles ``KeyboardInterrupt``: the run in progress is recorded as
interrupted (a tuning trial's ``fail_reason``; an interrupted trial does not use the
budget), finished results stay, and the command exits with status 130. Two signals
would otherwise skip that path: SIGTERM (``kill``, a scheduler's stop, ``timeout``)
ends Python without unwinding, leaving a trial RUNNING until its heartbeat is stale,
and a shell starts background jobs (``cmd &``) with SIGINT ignored, so ``kill -INT``
does nothing. :func:`stop_on_signals` turns both into ``KeyboardInterrupt``.

A ``KeyboardInterrupt`` raised while torch writes a checkpoint comes out of torch's C++
writer as ``RuntimeError: ... unexpected pos`` (a failed run, not an interrupted one):
:func:`held_during` holds the signals for such a block and delivers them after it.
"""
import contextlib
import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def _handlers(handlers):
    """Within the block, ``handlers`` ({signal: handler}) handle those signals; the
    previous handlers come back after it. Elsewhere than in the main thread (where
    Python cannot set handlers) the block runs unchanged."""
    try:
        previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop_on_signals():
    """Within the block, SIGTERM and SIGINT raise ``KeyboardInterrupt`` in the main
    thread; the previous handlers come back after it. Elsewhere than in the main
    thread the block runs unchanged."""
    return _handlers({signal.SIGTERM: _interrupt, signal.SIGINT: signal.default_int_handler})


@contextlib.contextmanager
def held_during():
    """Within the block, SIGTERM and SIGINT are held; when it ends (also by an error)
    they are raised again, so the handlers in force before the block (e.g.
    :func:`stop_on_signals`'s ``KeyboardInterrupt``) act on them then. Elsewhere than in
    the main thread the block runs unchanged."""
    received = []
    try:
        with _handlers({signum: lambda signum, frame: received.append(signum)
                        for signum in STOP_SIGNALS}):
            yield
    finally:
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)
