"""RecBole's multi-process training (``nproc``, ``world_size``, ``ip``, ``port``) only
runs on CUDA (no upstream issue).

``Config._init_device`` hard-codes the nccl backend and asserts one ``gpu_id`` per
process, and ``AbstractTrainer.__init__`` wraps the model in ``DistributedDataParallel``
with ``device_ids=[local_rank]``, which torch refuses for a CPU model. Without CUDA the
processes now join a gloo group on the CPU and DDP gets no device IDs. DDP also stops
re-broadcasting buffers before every forward (a plugin model keeps its whole CSR
training matrix in buffers; they are equal on every process after DDP's initial
sync); on CUDA the wrapping is otherwise RecBole's.
"""
import inspect

import torch
from recbole.config import configurator


def _gloo_init_device(self):
    """RecBole's ``Config._init_device`` for a multi-process run without CUDA."""
    final = self.final_config_dict
    final["gpu_id"] = str(final["gpu_id"]) if final["gpu_id"] is not None else ""
    torch.distributed.init_process_group(
        backend="gloo",
        rank=final["local_rank"] + (final["offset"] or 0),
        world_size=final["world_size"],
        init_method=f"tcp://{final['ip']}:{final['port']}",
    )
    final["device"] = torch.device("cpu")
    final["single_spec"] = False
    if final["local_rank"] != 0:
        final["state"] = "error"
        final["show_progress"] = False
        final["verbose"] = False


def _no_forward_buffer_sync():
    """DDP's option that turns off the buffer broadcast before each forward (torch >=
    2.12 names it ``forward_sync_buffers``; ``broadcast_buffers`` is deprecated)."""
    from torch.nn.parallel import DistributedDataParallel

    options = inspect.signature(DistributedDataParallel.__init__).parameters
    if "forward_sync_buffers" in options:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def apply():
    from recbole.trainer.trainer import AbstractTrainer
    from torch.nn.parallel import DistributedDataParallel

    recbole_init_device = configurator.Config._init_device
    recbole_abstract_init = AbstractTrainer.__init__

    def _init_device(self):
        if "local_rank" in self.final_config_dict and not torch.cuda.is_available():
            return _gloo_init_device(self)
        return recbole_init_device(self)

    def __init__(self, config, model):
        if config["single_spec"]:
            return recbole_abstract_init(self, config, model)
        on_cuda = torch.device(config["device"]).type == "cuda"
        self.config = config
        self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.distributed_model = DistributedDataParallel(
            self.model,
            device_ids=[config["local_rank"]] if on_cuda else None,
            **_no_forward_buffer_sync(),
        )

    _init_device.__doc__ = recbole_init_device.__doc__
    __init__.__doc__ = recbole_abstract_init.__doc__
    configurator.Config._init_device = _init_device
    AbstractTrainer.__init__ = __init__
