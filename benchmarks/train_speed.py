"""Training and evaluation speed and memory: AnchorMultVAE against RecBole's MultiVAE
(or AnchorRecVAE against RecBole's RecVAE).

    python benchmarks/train_speed.py --shape=ml-1m [--epochs=2] [--device=cpu|cuda]
                                     [--family=multvae|recvae]

On synthetic data of the shape (``benchmarks/synthetic.py``, generated on first use
into ``benchmarks/data/``), with the dataset preset of that shape (strong
generalization; ``ml-20m``: 10,000 validation and 10,000 test users), three cases at
the same architecture (600-200), batch size (500) and device:

- ``anchor``: AnchorMultVAE with the anchor on (``anchor_weight`` 0.1);
- ``anchor0``: AnchorMultVAE with ``anchor_weight`` 0;
- ``baseline``: RecBole's MultiVAE (``latent_dimension`` 400: RecBole's counts mu
  and logvar together).

``--family=recvae``: AnchorRecVAE (anchor on, anchor off) against RecBole's RecVAE,
at RecVAE's architecture (600 hidden, 200 latent) and the same batch size.

Memory, one fresh subprocess per case: data preparation (seconds, and peak memory
above the process's memory before it, from atomic files to ready dataloaders), then
the peak above the loaded dataset (the memory once the dataloaders are ready) while
building the model and taking 10 training steps. Peak RSS on CPU (``VmHWM`` of
``/proc/self/status``, reset through ``/proc/self/clear_refs``), peak allocated on GPU.

Time, all cases in this process on the same dataloaders: one warm-up epoch each,
then ``--epochs`` timed epochs taken in turns (a change in the machine's load falls
on every case), then one full-ranking evaluation of the test users each
(``baseline`` also at RecBole's default ``eval_batch_size`` 4096). The same run
measures torch's dense matmul throughput on the device and gives each training
epoch's FLOP/s (see :func:`epoch_flops`) as a share of it.

Prints a table and writes ``benchmarks/results/train_speed-<shape>-<device>.json``
(``...-<device>-recvae.json`` for ``--family=recvae``).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

import synthetic  # noqa: E402

CASES = ("anchor", "anchor0", "baseline")
#: family -> (plugin model, RecBole baseline model) of the cases.
FAMILIES = {"multvae": ("AnchorMultVAE", "MultiVAE"), "recvae": ("AnchorRecVAE", "RecVAE")}
#: (what, summary key, target) of the ratios the table prints.
RATIOS = (
    ("anchor overhead (epoch, anchor / anchor0)", "anchor_overhead_epoch", 1.10),
    ("epoch time vs baseline (anchor / baseline)", "anchor_vs_baseline_epoch", 0.8),
    ("training memory vs baseline", "anchor_vs_baseline_train_memory", 0.5),
    ("evaluation vs baseline at the same eval batch", "anchor_vs_baseline_eval", None),
    ("evaluation vs baseline at RecBole's default batch",
     "anchor_vs_baseline_default_batch_eval", 0.5),
)
HIDDEN, LATENT, BATCH = 600, 200, 500
RECBOLE_DEFAULT_EVAL_BATCH = 4096


# ------------------------------------------------------------------ memory probes
class Memory:
    """Current and peak memory of this process: RSS from /proc on CPU, torch's
    allocator on CUDA. ``reset()`` starts a new peak from the current value."""

    def __init__(self, device):
        self.cuda = device == "cuda"

    def current(self):
        if self.cuda:
            import torch

            return torch.cuda.memory_allocated()
        return self._status("VmRSS")

    def peak(self):
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated()
        return self._status("VmHWM")

    def reset(self):
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)

    @staticmethod
    def _status(key):
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f"/proc/self/status has no {key}")


def _sync(device):
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


# ------------------------------------------------------------------- throughput
def matmul_throughput(device, n_items, repeats=10):
    """Dense float32 matmul FLOP/s on ``device``: the best of a square 2048 product
    and the training step's largest product (batch x n_items by n_items x hidden)."""
    import torch

    best = 0.0
    for m, k, n in ((2048, 2048, 2048), (BATCH, n_items, HIDDEN)):
        a = torch.randn(m, k, device=device)
        b = torch.randn(k, n, device=device)
        a @ b
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        _sync(device)
        best = max(best, 2.0 * m * k * n * repeats / (time.perf_counter() - start))
    return best


def epoch_flops(case, sparse_input, n_items, train_nnz, n_train_users):
    r"""Multiply-add FLOPs of one training epoch, forward and backward, as computed:
    per user, the dense layers cost 6 x in x out (forward, input and weight
    gradients) except the first, which needs no input gradient (4 x n_items x
    hidden, or 4 x |S_u| x hidden when the input is sparse); the anchor centroid
    costs 4 x |S_u| x d."""
    rest = 6 * (HIDDEN * 2 * LATENT + LATENT * HIDDEN + HIDDEN * n_items)
    first = 4 * HIDDEN * (train_nnz if sparse_input else n_items * n_train_users)
    anchor = 4 * LATENT * train_nnz if case == "anchor" else 0
    return rest * n_train_users + first + anchor


# ------------------------------------------------------------------------ a case
def case_settings(case, shape, data_path, device, epochs, family="multvae"):
    """(model, dataset, config files, config dict) of one case of ``family``."""
    preset = "ml-20m" if shape == "ml-20m" else "ml-1m"
    config_dict = {
        "data_path": data_path,
        "load_col": {"inter": ["user_id", "item_id"]},
        "unused_col": None,
        "val_interval": None,
        "show_progress": False,
        "state": "ERROR",
        "gpu_id": "0" if device == "cuda" else "",
        "epochs": epochs + 1,
        "train_batch_size": BATCH,
        "mlp_hidden_size": [HIDDEN],
        "dropout_prob": 0.5,
        "checkpoint_dir": os.path.join(data_path, "saved"),
    }
    if shape not in synthetic.SHAPES:
        config_dict["eval_args"] = {
            "split": {"SG": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO", "mode": "full"
        }
    plugin_model, baseline_model = FAMILIES[family]
    model = baseline_model if case == "baseline" else plugin_model
    if family == "recvae":
        config_dict["hidden_dimension"] = HIDDEN
        config_dict["latent_dimension"] = LATENT
    else:  # RecBole's MultiVAE counts mu and logvar in its latent_dimension
        config_dict["latent_dimension"] = 2 * LATENT if case == "baseline" else LATENT
    if case != "baseline":
        config_dict["anchor_weight"] = 0.1 if case == "anchor" else 0.0
    preset_file = os.path.join(ROOT, "properties", "dataset", preset + ".yaml")
    return model, synthetic.dataset_name(shape), [preset_file], config_dict


def _prepare(case, shape, data_path, device, epochs, family="multvae"):
    """Config and (train, test) loaders of ``case``; seconds and peak memory above
    the memory before, from atomic files to ready dataloaders."""
    from recbole.utils import init_seed

    from recbole_anchor.config import Config
    from recbole_anchor.trainer.memory import apply_memory_settings
    from recbole_anchor.data.loading import create_dataset, data_preparation

    memory = Memory(device)
    model_name, dataset_name, files, config_dict = case_settings(
        case, shape, data_path, device, epochs, family
    )
    config = Config(model_name, dataset_name, files, config_dict, cmd_args=[])
    apply_memory_settings(config)  # as the quick start does
    init_seed(config["seed"], config["reproducibility"])
    memory.reset()
    before = memory.current()
    start = time.perf_counter()
    dataset = create_dataset(config)
    train_data, _, test_data = data_preparation(config, dataset)
    prep = {
        "data_prep_seconds": time.perf_counter() - start,
        "data_prep_peak_bytes": int(memory.peak() - before),
        "n_users": int(dataset.user_num - 1),
        "n_items": int(dataset.item_num - 1),
        "n_interactions": int(len(dataset.inter_feat)),
    }
    return config, train_data, test_data, prep


def _build(case, config, train_data):
    """Model and trainer of ``case``, seeded as the quick start seeds them."""
    from recbole.utils import init_seed

    from recbole_anchor.registry import build_model, get_trainer

    init_seed(config["seed"], config["reproducibility"])
    model = build_model(config, train_data._dataset)
    return get_trainer(config["MODEL_TYPE"], config["model"])(config, model)


def _warm_up_torch(device):
    import torch
    import torch.nn.functional as F
    from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (the trainer's)

    weight = torch.randn(256, 256, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([weight])
    bags = F.embedding_bag(
        torch.arange(256, device=device), weight, torch.arange(0, 256, 16, device=device),
        mode="sum", per_sample_weights=torch.rand(256, device=device),
    )
    (F.log_softmax(torch.tanh(bags @ weight), 1).sum() + (weight @ weight).sum()).backward()
    optimizer.step()


def measure_memory(case, shape, data_path, device="cpu", steps=10, family="multvae"):
    """Peak memory of ``case`` above the loaded dataset (this process's memory once
    the dataloaders are ready): building the model and ``steps`` training steps
    (the optimizer state exists after the first; RecVAE's trainers alternate encoder
    and decoder steps, so both phases' optimizers have theirs). Run in a fresh process."""
    config, train_data, _, prep = _prepare(case, shape, data_path, device, 1, family)
    _warm_up_torch(device)  # thread pools and kernels' scratch, not the model's
    memory = Memory(device)
    memory.reset()
    loaded = memory.current()
    trainer = _build(case, config, train_data)
    model = trainer.model
    model.train()
    for step, interaction in enumerate(train_data):
        if step == steps:
            break
        interaction = interaction.to(config["device"])
        if hasattr(trainer, "optimizer_encoder"):  # RecVAE's alternating phases
            encoder_phase = step % 2 == 0
            optimizer = trainer.optimizer_encoder if encoder_phase else trainer.optimizer_decoder
            losses = model.calculate_loss(interaction, encoder_flag=encoder_phase)
        else:
            optimizer = trainer.optimizer
            losses = model.calculate_loss(interaction)
        optimizer.zero_grad()
        (sum(losses) if isinstance(losses, tuple) else losses).backward()
        optimizer.step()
    _sync(device)
    return {**prep, "train_peak_bytes_above_loaded": int(memory.peak() - loaded)}


def measure_time(shape, data_path, device="cpu", epochs=1, family="multvae"):
    """Seconds per training epoch and per full-ranking evaluation of the test users,
    every case in this one process on the same loaders, epochs taken in turns (one
    warm-up epoch each first), so that a change in the machine's load falls on all."""
    import torch
    from recbole.data.dataloader import FullSortEvalDataLoader

    from recbole_anchor.config import Config

    config, train_data, test_data, prep = _prepare(
        "anchor", shape, data_path, device, epochs, family
    )
    trainers, results = {}, {}
    for case in CASES:  # the loaders depend on the dataset settings only, the same for all
        case_config = Config(
            *case_settings(case, shape, data_path, device, epochs, family), cmd_args=[]
        )
        trainers[case] = _build(case, case_config, train_data)
        results[case] = {
            "case": case, "model": case_config["model"], "epoch_seconds": [],
            "fused_optimizer": bool(case_config["fused_optimizer"]),
        }
    train_users = torch.unique(train_data._dataset.inter_feat[train_data._dataset.uid_field])
    for epoch in range(epochs + 1):
        for case, trainer in trainers.items():
            _sync(device)
            start = time.perf_counter()
            trainer._train_epoch(train_data, epoch)
            _sync(device)
            if epoch > 0:  # epoch 0 warms up
                results[case]["epoch_seconds"].append(time.perf_counter() - start)

    def evaluate(trainer, loader):
        _sync(device)
        start = time.perf_counter()
        metrics = trainer.evaluate(loader, load_best_model=False)
        _sync(device)
        return time.perf_counter() - start, {k: float(v) for k, v in metrics.items()}

    for case, trainer in trainers.items():
        r = results[case]
        r["epoch_seconds_mean"] = sum(r["epoch_seconds"]) / len(r["epoch_seconds"])
        sparse_input = case != "baseline" and bool(getattr(trainer.model, "sparse_input", False))
        r["epoch_flops"] = None if family == "recvae" else epoch_flops(
            case, sparse_input, prep["n_items"] + 1, len(train_data._dataset.inter_feat),
            len(train_users),
        )  # RecVAE's alternating passes have no FLOP count here
        r["test_users"] = int(len(test_data.uid_list))
        r["eval_batch_size"] = int(config["eval_batch_size"])
        r["eval_seconds"], r["test_result"] = evaluate(trainer, test_data)
    config["eval_batch_size"] = RECBOLE_DEFAULT_EVAL_BATCH
    default_loader = FullSortEvalDataLoader(
        config, test_data._dataset, test_data._sampler, shuffle=False
    )
    results["baseline"]["eval_seconds_recbole_default_batch"], _ = evaluate(
        trainers["baseline"], default_loader
    )
    return results, prep


# ----------------------------------------------------------------------- driver
def _memory_in_subprocesses(args):
    """{case: measure_memory(case)}, each case in a fresh process, ``args.memory_jobs``
    of them at a time (their data preparation then shares the machine)."""
    def start(case):
        command = [
            sys.executable, os.path.abspath(__file__), f"--memory_worker={case}",
            f"--shape={args.shape}", f"--device={args.device}", f"--data_path={args.data_path}",
            f"--threads={torch_threads(args)}", f"--family={args.family}",
        ]
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=args.data_path,
        )

    measured, pending = {}, list(CASES)
    while pending:
        batch, pending = pending[: args.memory_jobs], pending[args.memory_jobs :]
        running = {case: start(case) for case in batch}
        for case, process in running.items():
            out, err = process.communicate()
            if process.returncode:
                raise RuntimeError(f"memory worker for {case} failed:\n{err[-2000:]}")
            measured[case] = json.loads(out.strip().splitlines()[-1])
    return measured


def summarize(results, throughput):
    """Ratios between the cases and the training steps' share of matmul throughput."""
    anchor, anchor0, baseline = (results[case] for case in CASES)
    summary = {
        "anchor_overhead_epoch": anchor["epoch_seconds_mean"] / anchor0["epoch_seconds_mean"],
        "anchor_vs_baseline_epoch": anchor["epoch_seconds_mean"] / baseline["epoch_seconds_mean"],
        "anchor_vs_baseline_train_memory": anchor["train_peak_bytes_above_loaded"]
        / max(1, baseline["train_peak_bytes_above_loaded"]),
        "anchor_vs_baseline_eval": anchor["eval_seconds"] / baseline["eval_seconds"],
        "anchor_vs_baseline_default_batch_eval": anchor["eval_seconds"]
        / baseline["eval_seconds_recbole_default_batch"],
        "matmul_flops_per_second": throughput,
    }
    for case in CASES:
        flops = results[case]["epoch_flops"]
        achieved = None if flops is None else flops / results[case]["epoch_seconds_mean"]
        results[case]["achieved_flops_per_second"] = achieved
        results[case]["share_of_matmul_throughput"] = (
            None if achieved is None else achieved / throughput
        )
    return summary


def format_table(results, summary, family="multvae"):
    """The printed table; the issue's targets are marked for the multvae family only."""
    def mib(value):
        return f"{value / 2**20:,.0f}"

    header = (
        "case", "prep s", "prep MiB", "epoch s", "train MiB", "eval s", "GFLOP/s", "of matmul"
    )
    rows = [header]
    for case in CASES:
        r = results[case]
        rows.append((
            f"{case} ({r['model']})", f"{r['data_prep_seconds']:.1f}",
            mib(r["data_prep_peak_bytes"]),
            f"{r['epoch_seconds_mean']:.2f}", mib(r["train_peak_bytes_above_loaded"]),
            f"{r['eval_seconds']:.2f}",
            "n/a" if r["achieved_flops_per_second"] is None
            else f"{r['achieved_flops_per_second'] / 1e9:.1f}",
            "n/a" if r["share_of_matmul_throughput"] is None
            else f"{r['share_of_matmul_throughput']:.0%}",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    baseline = results["baseline"]
    lines += [
        "",
        f"baseline eval at RecBole's default eval_batch_size {RECBOLE_DEFAULT_EVAL_BATCH}: "
        f"{baseline['eval_seconds_recbole_default_batch']:.2f} s "
        f"({baseline['test_users']} test users)",
        f"dense matmul throughput: {summary['matmul_flops_per_second'] / 1e9:.1f} GFLOP/s",
    ]
    for label, key, target in RATIOS:
        goal = f"  (target <= {target})" if target and family == "multvae" else ""
        lines.append(f"{label + ':':<52}{summary[key]:.2f}x{goal}")
    return "\n".join(lines)


def torch_threads(args):
    import torch

    return args.threads or torch.get_num_threads()


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shape", default="ml-1m", help="ml-20m, ml-1m or USERSxITEMSxINTERACTIONS"
    )
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument(
        "--family", default="multvae", choices=sorted(FAMILIES),
        help="multvae: AnchorMultVAE vs MultiVAE; recvae: AnchorRecVAE vs RecVAE",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument("--data_path", default=os.path.join(HERE, "data"))
    parser.add_argument("--output_dir", default=os.path.join(HERE, "results"))
    parser.add_argument("--seed", type=int, default=2020, help="seed of the synthetic data")
    parser.add_argument(
        "--memory_jobs", type=int, default=1,
        help="memory-measuring processes at a time (default 1: data preparation timed alone)",
    )
    parser.add_argument("--memory_worker", choices=CASES, help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.data_path = os.path.abspath(args.data_path)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_worker:
        measured = measure_memory(
            args.memory_worker, args.shape, args.data_path, args.device, family=args.family
        )
        print(json.dumps(measured))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print("train_speed.py: error: --device=cuda, but torch sees no CUDA device",
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    synthetic.ensure_dataset(args.shape, args.data_path, seed=args.seed)
    generate_seconds = time.perf_counter() - start
    n_items = synthetic.parse_shape(args.shape)[1]
    memory = _memory_in_subprocesses(args)
    throughput = matmul_throughput(args.device, n_items)
    results, prep = measure_time(
        args.shape, args.data_path, args.device, args.epochs, args.family
    )
    throughput = max(throughput, matmul_throughput(args.device, n_items))
    for case in CASES:
        for key in ("train_peak_bytes_above_loaded", "data_prep_peak_bytes", "data_prep_seconds"):
            results[case][key] = memory[case][key]
    summary = summarize(results, throughput)
    report = {
        "command": " ".join(
            ["python", "benchmarks/train_speed.py"] + (sys.argv[1:] if argv is None else argv)
        ),
        "shape": args.shape,
        "family": args.family,
        "device": args.device,
        "device_name": (
            torch.cuda.get_device_name(0)
            if args.device == "cuda"
            else platform.processor() or platform.machine()
        ),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "epochs_timed": args.epochs,
        "data_generation_seconds": generate_seconds,
        "data_prep": prep,
        "summary": summary,
        "cases": results,
        "total_seconds": time.perf_counter() - start,
    }
    os.makedirs(args.output_dir, exist_ok=True)
    family = "" if args.family == "multvae" else f"-{args.family}"
    path = os.path.join(
        args.output_dir, f"train_speed-{args.shape}-{args.device}{family}.json"
    )
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(format_table(results, summary, args.family))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
