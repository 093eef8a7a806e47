"""Does NVML's energy counter, read around a case's timed calls, agree with its power readings?

    PYTHONPATH=. python benchmarks/energy_check.py [--profile default] [--width 2048] [--repeats 3]

Needs an NVIDIA GPU (Volta or newer) and nvidia-ml-py. Times one training step of an MLP (forward,
backward, SGD step) with `benchbench.run.execute.run_case`, the energy meter the worker would open, and a
thread that samples `nvmlDeviceGetPowerUsage` every 10 ms while the case samples. It prints, per repeat,
the case's joules per step next to mean sampled power x seconds per step, and their ratio; the target is
within 10%. (NVML's power reading is itself an average over a window of the driver's choosing, so short
cases and the `quick` profile agree less well than long ones.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time


class PowerSampler:
    """Samples one GPU's power draw (watts) every `period` seconds between start() and stop()."""

    def __init__(self, nv, handle, period: float = 0.01) -> None:
        self.nv, self.handle, self.period = nv, handle, period
        self.watts: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.watts.append(self.nv.nvmlDeviceGetPowerUsage(self.handle) / 1000.0)
            time.sleep(self.period)

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="default")
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import torch

    from benchbench import Case, benchmark
    from benchbench.measure import nvml
    from benchbench.measure.backends import get
    from benchbench.measure.energy import Meter, open_meter
    from benchbench.measure.engine import budget_for
    from benchbench.model.report import CaseKey
    from benchbench.run.execute import run_case

    backend = get("cuda")
    if not backend.available:
        print(f"no CUDA device: {backend.reason}", file=sys.stderr)
        return 2
    meter = open_meter(backend)
    if not isinstance(meter, Meter):
        print(f"energy unavailable: {meter}", file=sys.stderr)
        return 2
    nv = nvml.import_pynvml()
    handle = nv.nvmlDeviceGetHandleByUUID(backend.properties["uuid"])

    @benchmark()
    def train_step(ctx):
        dev = ctx.device
        model = torch.nn.Sequential(*[m for _ in range(4) for m in (torch.nn.Linear(args.width, args.width),
                                                                     torch.nn.ReLU())]).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        x = torch.randn(args.batch, args.width, device=dev)

        def step():
            opt.zero_grad(set_to_none=True)
            model(x).square().mean().backward()
            opt.step()

        return Case(step, items=args.batch, items_unit="samples")

    key = CaseKey.make("energy_check", "train_step", {"width": args.width, "batch": args.batch}, "cuda", "float32")
    print(f"{meter.label}; {args.profile} profile; MLP 4x{args.width}, batch {args.batch}")
    print("repeat  J/step(counter)  W(counter)  W(sampled)  J/step(sampled W x s/step)  ratio")
    ratios = []
    for i in range(args.repeats):
        sampler = PowerSampler(nv, handle)
        r = run_case(train_step, key, backend, budget_for(args.profile), meter=meter,
                     on_phase=lambda ph, s=sampler: s.start() if ph == "measure" else None)
        sampler.stop()
        if not r.ok or "energy_j_per_call" not in r.metrics:
            print(f"{i}: {r.status} {r.reason or r.metrics.get('energy')}")
            continue
        j, w = r.metrics["energy_j_per_call"], r.metrics["power_w"]
        sampled_w = statistics.fmean(sampler.watts)
        expected = sampled_w * statistics.fmean(r.samples)
        ratios.append(j / expected)
        print(f"{i:6d}  {j:15.4g}  {w:10.1f}  {sampled_w:10.1f}  {expected:26.4g}  {j / expected:5.3f}"
              f"  ({len(sampler.watts)} power samples)")
    if not ratios:
        return 1
    worst = max(abs(x - 1) for x in ratios)
    print(f"worst disagreement {100 * worst:.1f}% (target: within 10%)")
    return 0 if worst <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
