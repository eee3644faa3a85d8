"""Run by torchrun from tests/test_ddp.py (and importable there for the single-process side).

``python -m torch.distributed.run --nproc_per_node 2 tests/ddp_probe.py step OUT.pt``
    one training step of Net1 on a fixed batch of 31 images (shards of 16 and 15), through
    DistributedDataParallel exactly as train_one_epoch takes it; rank 0 saves the gradient.

``python -m torch.distributed.run --nproc_per_node 2 tests/ddp_probe.py cli LOGDIR ARGV...``
    the real ``python -m maskrec`` CLI with ARGV, every file MaskRec writes logged per rank into
    LOGDIR/writes-RANK.txt, and rank 1 failing when it starts epoch 2's test pass.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def one_step(batch: int = 31) -> torch.Tensor:
    """The flattened gradient of one step on a seeded batch, in this process's Context."""
    import torch.nn.functional as F

    from maskrec.train import distributed
    from maskrec.models.build import build
    ctx = distributed.current()
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(batch, 3, 32, 32, generator=g), torch.randint(0, 2, (batch,), generator=g)
    torch.manual_seed(0)
    model = build("net1")
    net = ctx.wrap(model, torch.device("cpu"))
    net.train()
    idx = ctx.shard(torch.arange(batch))
    loss = F.nll_loss(net(X[idx]), y[idx]) * (len(idx) * ctx.world / batch)  # as train_one_epoch weights it
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def main() -> int:
    mode, target, argv = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    rank = int(os.environ["RANK"])
    if mode == "step":
        from maskrec.train import distributed
        distributed.setup(torch.device("cpu"))
        grad = one_step()
        if rank == 0:
            torch.save(grad, target)
        distributed.teardown()
        # as the CLI leaves (maskrec.cli.main): a rank can die in the C++ destructors of process exit
        # ("terminate called without an active exception", SIGABRT) after its work is done, which
        # failed this test once in 16 runs beside other work (issue 36)
        distributed.exit_now(0)

    import maskrec.core.atomic
    real_write = maskrec.core.atomic.atomic_write

    def logged_write(path, write, *args, **kw):  # every MaskRec file write goes through here
        with open(target / f"writes-{rank}.txt", "a") as f:
            f.write(f"{Path(path).resolve()}\n")
        real_write(path, write, *args, **kw)
    maskrec.core.atomic.atomic_write = logged_write  # before anything imports it by name

    import maskrec.train.loop
    real_evaluate, calls = maskrec.train.loop.evaluate, []

    def failing_evaluate(*a, **kw):
        calls.append(1)
        if rank == 1 and len(calls) == 2:
            raise RuntimeError("injected failure on rank 1")
        return real_evaluate(*a, **kw)
    maskrec.train.loop.evaluate = failing_evaluate
    from maskrec.__main__ import main as cli
    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
