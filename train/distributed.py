"""Training on several processes: torchrun + DistributedDataParallel, or one process as before.

``torchrun --nproc_per_node N -m train ...`` (``make train NPROC=N``) starts N copies of the
trainer; each finds its rank in the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK).
The run stays the run of one process, split:

* batches: every process draws the same seeded epoch order and augmentations (train/seeding.py)
  for the whole global batch of ``train.batch_size`` images and trains on its share (images
  rank, rank + N, ...), so the data order and the hyperparameters do not depend on N; DDP
  averages the gradients of the shares;
* BatchNorm: with nccl (GPU) SyncBatchNorm normalises with the statistics of the global batch;
  gloo (CPU) has no SyncBatchNorm, so each process normalises with its own share's statistics
  and the running statistics kept are rank 0's (DDP broadcasts buffers from rank 0);
* evaluation: each process scores its share of the images, the sums are added up;
* checkpoints, metrics, plots, the export and the console: rank 0 only. A checkpoint holds the
  plain model, so a run resumes on any number of processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world: int = 1
    backend: str | None = None  # None: one process, no process group

    @property
    def main(self) -> bool:
        return self.rank == 0

    @staticmethod
    def from_env(device: torch.device) -> "Processes":
        """One process unless torchrun started several; then join their process group (nccl on
        GPU, gloo on CPU)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return Processes()
        backend = "nccl" if device.type == "cuda" else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend)
        return Processes(dist.get_rank(), world, backend)

    def device(self, device: torch.device) -> torch.device:
        """Each process its own GPU (LOCAL_RANK) on a multi-GPU machine."""
        if device.type == "cuda" and self.world > 1:
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return device

    def bn_statistics(self) -> str:
        if self.world == 1:
            return "BatchNorm over each batch"
        if self.backend == "nccl":
            return "SyncBatchNorm over the global batch"
        return ("BatchNorm over each process's share of the batch (gloo has no SyncBatchNorm); "
                "running statistics from rank 0")

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """DistributedDataParallel around ``model`` (with SyncBatchNorm where the backend has it)."""
        if self.world == 1:
            return model
        if self.backend == "nccl":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def share(self, items: torch.Tensor) -> torch.Tensor:
        """This process's share of a batch (or of an index list): elements rank, rank + N, ..."""
        return items[self.rank::self.world]

    def total(self, *values: float) -> list[float]:
        """Each value summed over the processes."""
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def unwrapped(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (what checkpoints hold)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
