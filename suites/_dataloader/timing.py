"""Timing a DataLoader: windows of batches per sample, start-up kept out, failing workers named."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

# Per profile: the fewest and most samples, and the seconds to sample for once the fewest are in.
# quick runs in 3 rounds (fresh worker processes) like every suite: a round takes little.
SAMPLING = {"quick": (2, 20, 0.5), "default": (10, 200, 10.0), "full": (20, 1000, 30.0)}
FIRST_BATCH_REPEATS = {"quick": 1, "default": 4, "full": 8}
MIN_EPOCH_BATCHES = 16


WORKER_EXIT_WAIT_S = 2.0


class WorkerError(RuntimeError):
    """A DataLoader worker raised: the message names the worker and its exception in one line."""


def worker_failure(exc: BaseException, it: Any = None) -> BaseException:
    """The error to report for an exception out of a DataLoader iterator.

    DataLoader re-raises a worker's exception with "Caught X in DataLoader worker process N." on the
    first line and the worker's traceback below; a result keeps only the first line of its reason, so
    the worker's own last line (its exception and message) goes beside it. A worker that died gives
    "DataLoader worker (pid(s) N) exited unexpectedly". Either becomes a new WorkerError that holds no
    reference to the iterator (a traceback would keep it, and its workers, alive); anything else is
    returned without its traceback, for the same reason.
    """
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if first.startswith("Caught ") and "DataLoader worker" in first:
        last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), first)
        where = first[len("Caught "):].rstrip(".")
        return WorkerError(f"{where}: {last}" if last != first else where)
    if first.startswith("DataLoader worker (pid"):
        return WorkerError(first)
    # A worker that dies while the main process fetches its batch's shared memory shows up as EOFError
    # or ConnectionResetError, often before the worker has finished exiting: wait for its exit code.
    workers = getattr(it, "_workers", None) or []
    if isinstance(exc, (EOFError, ConnectionError)) and workers:
        deadline = time.monotonic() + WORKER_EXIT_WAIT_S
        try:
            while True:
                dead = [(w.pid, w.exitcode) for w in workers if w.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        except RuntimeError as late:  # DataLoader's SIGCHLD handler saw the worker die first
            if not str(late).startswith("DataLoader worker (pid"):
                raise
            return WorkerError(str(late).splitlines()[0])
        if dead:
            pid, code = dead[0]
            return WorkerError(f"DataLoader worker (pid {pid}) exited unexpectedly with exit code {code} "
                               f"({type(exc).__name__} while receiving a batch)")
    return exc.with_traceback(None)


@dataclass
class LoaderTiming:
    samples: list[float]  # seconds per batch, one per window of `window` batches
    window: int
    first_batch_s: list[float]  # time to the first batch of each epoch started
    batches: int
    epochs: int
    batch_bytes: int  # tensor bytes of one batch (what workers pass through shared memory)
    worker_memory: dict[str, float] = field(default_factory=dict)


def worker_memory() -> dict[str, float]:
    """USS and PSS (where the OS reports it) summed over this process's descendants: the DataLoader
    workers while an epoch is running (and the forkserver, with that start method)."""
    import psutil

    total: dict[str, float] = {}
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            info = child.memory_full_info()
        except (psutil.Error, OSError):
            continue
        for name in ("uss", "pss"):
            if hasattr(info, name):
                total[f"workers_{name}_bytes"] = total.get(f"workers_{name}_bytes", 0.0) + float(getattr(info, name))
    if total:
        total["workers_seen"] = float(len(children))
    return total


def time_loader(loader: Iterable, window: int, min_samples: int, max_samples: int, max_s: float,
                consume: Callable[[Any], None] | None = None, sync: Callable[[], None] | None = None,
                memory: Callable[[], dict[str, float]] | None = None,
                clock: Callable[[], float] = time.perf_counter) -> LoaderTiming:
    """Iterate epochs of `loader` until enough windows are timed.

    Each window of `window` batches gives a sample (seconds per batch); the first window of every epoch
    holds the workers' start-up and is not one. `consume` handles each batch (e.g. the device copy),
    `sync` waits for the device at window ends, `memory` is read once per epoch, mid-way. Sampling stops
    at `min_samples` once `max_s` has passed or at `max_samples`, and at the end of an epoch that leaves
    `min_samples` in.
    """
    if window < 1 or min_samples < 1:
        raise ValueError("window and min_samples must be positive")
    samples: list[float] = []
    firsts: list[float] = []
    mem: dict[str, float] = {}
    batches = epochs = batch_bytes = 0
    sampling_since: float | None = None
    done = False
    while not done:
        epochs += 1
        n, last, peeked = 0, None, False
        failure: BaseException | None = None
        t0 = clock()
        it = iter(loader)
        try:
            for batch in it:
                if consume is not None:
                    consume(batch)
                n += 1
                if n == 1:
                    if sync is not None:
                        sync()
                    firsts.append(clock() - t0)
                    batch_bytes = batch_bytes or _nbytes(batch)
                if n % window:
                    continue
                if sync is not None:
                    sync()
                now = clock()
                if last is None:  # the end of the epoch's first window: start-up is behind
                    last = now
                    continue
                samples.append((now - last) / window)
                last = now
                sampling_since = now if sampling_since is None else sampling_since
                if memory is not None and not peeked:
                    peeked = True
                    for k, v in memory().items():
                        mem[k] = max(mem.get(k, 0.0), v)
                if len(samples) >= min_samples and (len(samples) >= max_samples or now - sampling_since >= max_s):
                    done = True
                    break
        except Exception as exc:  # noqa: BLE001 - raised below, once the iterator is gone
            failure = worker_failure(exc, it)
        finally:
            batches += n
            del it  # shuts the workers down (and DataLoader's SIGCHLD check stops watching them)
        if failure is not None:
            raise failure
        if not done and n < 2 * window:
            raise ValueError(f"an epoch of {n} batches is too short for windows of {window}")
        done = done or len(samples) >= min_samples  # a new epoch (new workers) only when samples are missing
    return LoaderTiming(samples, window, firsts, batches, epochs, batch_bytes, mem)


def _nbytes(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.numel() * batch.element_size()
    if isinstance(batch, (list, tuple)):
        return sum(_nbytes(b) for b in batch)
    if isinstance(batch, dict):
        return sum(_nbytes(b) for b in batch.values())
    return int(getattr(batch, "nbytes", 0))  # a numpy array (the GPU decoder's encoded bytes)


def first_batch_times(make: Callable[[], Any], epoch: int, repeats: int,
                      clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Seconds from iter(loader) to its first batch, in epoch 1 (a new loader each time) or in epoch 2
    and later (one loader; every earlier epoch drained untimed)."""
    out: list[float] = []
    failure: BaseException | None = None
    loader = it = None
    try:
        if epoch != 1:
            loader = make()
            for _ in loader:  # epoch 1, untimed
                pass
        for _ in range(repeats):
            if epoch == 1:
                it, loader = None, make()
            t0 = clock()
            it = iter(loader)
            next(it)
            out.append(clock() - t0)
            if epoch != 1:
                for _ in it:
                    pass
            it = None  # shuts a fresh loader's workers down
    except Exception as exc:  # noqa: BLE001 - raised below, once the iterator is gone
        failure = worker_failure(exc, it)
    finally:
        it = loader = None
    if failure is not None:
        raise failure
    return out
