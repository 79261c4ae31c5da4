"""Stand-alone timings behind benchmarks/README.md's items 4-6, at ML-20M's shape.

    python benchmarks/micro.py [--threads=1]

- ``adam``: one optimizer step over a 20,108 x 200 weight (the anchor table):
  torch's default Adam, ``foreach`` and ``fused``.
- ``anchor``: forward and backward of the anchor term for a batch of 500 users
  (about 38,000 nonzeros, Zipf-popular items) on sparse rows: the closed form through
  autograd (``ItemAnchors.parts``, the path before the fused function) against the
  fused function (``ItemAnchors.forward``).
- ``step``: one AnchorMultVAE-shaped training step (sparse first layer 20,108 -> 600,
  600 -> 400, 200 -> 600 -> 20,108, multinomial NLL, KL, anchor term, fused Adam) in a
  fresh process without and with ``keep_freed_memory``.
Medians of repeated runs, in milliseconds.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from recbole_anchor.model.anchor import ItemAnchors  # noqa: E402
from recbole_anchor.model.sparse_rows import SparseRows  # noqa: E402

N_ITEMS, LATENT, HIDDEN, BATCH = 20_108, 200, 600, 500


def median_ms(fn, repeats=25, warmup=5):
    times = []
    for index in range(repeats + warmup):
        start = time.perf_counter()
        fn()
        if index >= warmup:
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def batch_rows(seed=0):
    """500 users with 5-149 items each, drawn by Zipf popularity."""
    generator = torch.Generator().manual_seed(seed)
    counts = torch.randint(5, 150, (BATCH,), generator=generator)
    popularity = 1.0 / torch.arange(1, N_ITEMS + 1, dtype=torch.float64)
    items = torch.cat([
        torch.multinomial(popularity, int(c), replacement=False, generator=generator)
        for c in counts
    ])
    row_ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    return SparseRows.from_csr(row_ptr, items, torch.arange(BATCH), N_ITEMS)


def adam():
    out = {}
    for name, kwargs in (("default", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        weight = torch.nn.Parameter(torch.randn(N_ITEMS, LATENT) * 0.01)
        weight.grad = torch.randn_like(weight) * 1e-4
        optimizer = torch.optim.Adam([weight], lr=1e-3, **kwargs)
        out[name] = median_ms(optimizer.step)
    return out


def anchor():
    rows = batch_rows()
    anchors = ItemAnchors(N_ITEMS, LATENT)
    mu = torch.randn(BATCH, LATENT, requires_grad=True)
    logvar = torch.randn(BATCH, LATENT, requires_grad=True)

    def reference():
        anchors.anchors.grad = None
        sum(anchors.parts(rows, mu, logvar).values()).mean().backward()

    def fused():
        anchors.anchors.grad = None
        anchors(rows, mu, logvar).mean().backward()

    return {"nonzeros": int(rows.items.numel()), "autograd": median_ms(reference),
            "fused": median_ms(fused)}


def step(keep_freed):
    """One training step's median time, in this (fresh) process."""
    if keep_freed:
        from recbole_anchor.trainer.memory import keep_freed_memory

        assert keep_freed_memory()
    torch.manual_seed(0)
    rows = batch_rows()
    first = torch.nn.Parameter(torch.randn(N_ITEMS, HIDDEN) * 0.01)
    bias = torch.nn.Parameter(torch.zeros(HIDDEN))
    encoder = torch.nn.Linear(HIDDEN, 2 * LATENT)
    decoder = torch.nn.Sequential(
        torch.nn.Linear(LATENT, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, N_ITEMS)
    )
    anchors = ItemAnchors(N_ITEMS, LATENT)
    params = [first, bias, *encoder.parameters(), *decoder.parameters(), *anchors.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3, fused=True)

    def one_step():
        optimizer.zero_grad()
        values = F.dropout(rows.l2_normalized_values(), 0.5)
        h = encoder(torch.tanh(rows.times(first, values) + bias))
        mu, logvar = h[:, :LATENT], h[:, LATENT:]
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        nll = -rows.gather(F.log_softmax(decoder(z), 1)).sum() / BATCH
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        (nll + 0.2 * kl + 0.1 * anchors(rows, mu, logvar).mean()).backward()
        optimizer.step()

    return median_ms(one_step, repeats=20)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--step_worker", choices=("off", "on"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.step_worker:
        print(step(args.step_worker == "on"))
        return 0
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    print("adam step, 20,108 x 200 (ms):", {k: round(v, 1) for k, v in adam().items()})
    print("anchor term forward+backward (ms):", {k: round(v, 1) for k, v in anchor().items()})
    for mode in ("off", "on"):
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), f"--threads={args.threads}",
             f"--step_worker={mode}"], capture_output=True, text=True, check=True,
        )
        print(f"training step, keep_freed_memory {mode} (ms): {float(done.stdout):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
