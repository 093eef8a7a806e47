"""What the dataloader results say: the recommendation and its interval, the stage shares, the
persistent-workers saving and the input-bound check (pure functions of results)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchbench.analysis.compare import bootstrap_ratio_ci

from .pipeline import DECODER_PREFERENCE, DECODER_TEXT, KNOB_TEXT, KNOBS
from .text import result_note

if TYPE_CHECKING:  # pragma: no cover
    from benchbench import Result

# The transform stage each decoder's output goes through: every decoder but PIL gives a uint8 tensor.
TRANSFORM_STAGE = {"pil": "transform-pil", "torchvision": "transform-torchvision",
                   "torchcodec": "transform-torchvision"}
THRESHOLD = 0.95  # a setting within 5% of the best counts as fast enough
BOOTSTRAP = 2000


def _bootstrap_ratio(base: Sequence[float], new: Sequence[float], level: float, n: int,
                     seed: int) -> tuple[float, float, float]:
    """median(base) / median(new) with compare's percentile-bootstrap interval (each side resampled on its
    own), widened where resampling skews it to hold the estimate."""
    if not base or not new:
        raise ValueError("no samples")
    low, high = bootstrap_ratio_ci(new, base, level, n, seed)
    est = statistics.median(base) / statistics.median(new)
    return est, min(est, low), max(est, high)


def speedup_interval(base: Setting, new: Setting, level: float = 0.95, n: int = BOOTSTRAP,
                     seed: int = 0) -> tuple[float, float, float]:
    """How many times faster `new` runs than `base` (base's time per batch / new's) and its interval,
    both from one paired structure: the rounds.

    A round is one worker process that measured both settings, so the ratio of their medians inside a
    round cancels what that process's luck (its placement, a busy minute of the machine) did to both.
    The estimate is the geometric mean of the round ratios and the interval a Student t interval on
    their logarithms, centred on the estimate's logarithm: the estimate always lies inside it. (It is
    also the ratio of the two settings' own estimates, the geometric means of their round medians,
    when both have the same rounds.) With fewer than two rounds in common there is nothing to pair:
    the ratio of the sample medians, with a bootstrap interval of the same ratio.
    """
    import math

    from scipy.stats import t

    a, b = dict(base.rounds), dict(new.rounds)
    common = sorted(set(a) & set(b))
    if len(common) < 2:
        return _bootstrap_ratio(base.samples, new.samples, level, n, seed)
    logs = [math.log(a[i] / b[i]) for i in common]
    mean, sd = statistics.fmean(logs), statistics.stdev(logs)
    half = float(t.ppf(0.5 + level / 2, len(logs) - 1)) * sd / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


@dataclass(frozen=True)
class Setting:
    """One measured loader configuration and its samples (seconds per batch of `batch` images)."""

    decoder: str
    num_workers: int
    knob: str
    batch: int
    samples: tuple[float, ...]
    label: str = ""
    median_s: float | None = None  # the result's median (over rounds); else the samples' median
    rounds: tuple[tuple[int, float], ...] = ()  # (round index, that round's median), where measured in rounds

    @property
    def images_per_s(self) -> float:
        return self.batch / (self.median_s or statistics.median(self.samples))

    @property
    def cost(self) -> tuple[int, int, int]:
        """Fewer workers first, then no extra setting, then the preferred decoder (ImageFolder's own first)."""
        return (self.num_workers, KNOBS.index(self.knob), DECODER_PREFERENCE.index(self.decoder))

    def loader_text(self) -> str:
        parts = [f"num_workers={self.num_workers}"]
        if self.knob != "none":
            parts.append(KNOB_TEXT[self.knob])
        return ", ".join(parts)

    def text(self) -> str:
        return self.loader_text() + (f", {DECODER_TEXT[self.decoder]}" if self.decoder != "pil" else "")


def compare_decoders(settings: Sequence[Setting], seed: int = 0) -> dict[str, Any] | None:
    """Every decoder measured, each at its fastest DataLoader (default settings, any num_workers),
    fastest first, and how many times faster the fastest runs than the second, with its interval.
    None with no decoder measured."""
    best: dict[str, Setting] = {}
    for s in settings:
        if s.knob == "none" and (s.decoder not in best or s.images_per_s > best[s.decoder].images_per_s):
            best[s.decoder] = s
    ranked = sorted(best.values(), key=lambda s: s.images_per_s, reverse=True)
    if not ranked:
        return None
    out: dict[str, Any] = {"ranked": [{"decoder": s.decoder, "label": s.label, "setting": s.loader_text(),
                                       "images_per_s": s.images_per_s} for s in ranked]}
    if len(ranked) > 1:
        ratio, low, high = speedup_interval(ranked[1], ranked[0], seed=seed)
        out.update(fastest=ranked[0].decoder, second=ranked[1].decoder, ratio=ratio, ratio_ci=[low, high])
    return out


def recommend(settings: Sequence[Setting], threshold: float = THRESHOLD, seed: int = 0) -> dict[str, Any] | None:
    """The cheapest setting within `threshold` of the best throughput that is faster than the default
    beyond noise (its speed-up's interval, `speedup_interval`, lies above 1), its speed-up over the
    default, and the decoders compared (`compare_decoders`).

    The default is DataLoader(num_workers=0) with PIL decoding at the same batch size. On a flat curve
    the cheapest setting is the default itself (speed-up 1); so it is when no setting fast enough is
    faster beyond noise, and `within_noise` then names the cheapest of them with its speed-up and
    interval. None without a default to compare with.
    """
    if not settings:
        return None
    batch = settings[0].batch
    if any(s.batch != batch for s in settings):
        raise ValueError("recommend compares settings of one batch size")
    base = next((s for s in settings if s.num_workers == 0 and s.knob == "none" and s.decoder == "pil"), None)
    if base is None:
        return None
    best = max(settings, key=lambda s: s.images_per_s)
    good = sorted((s for s in settings if s.images_per_s >= threshold * best.images_per_s), key=lambda s: s.cost)
    pick, within_noise = base, None
    for s in good:
        if s is base:  # the cheapest of all: the curve is flat
            break
        ratio, low, high = speedup_interval(base, s, seed=seed)
        if low > 1:
            pick = s
            break
        if within_noise is None:
            within_noise = {"label": s.label, "setting": s.text(), "speedup": ratio, "speedup_ci": [low, high]}
    speedup, low, high = speedup_interval(base, pick, seed=seed)
    return {"batch": batch, "decoder": pick.decoder, "num_workers": pick.num_workers, "knob": pick.knob,
            "label": pick.label, "setting": pick.text(), "images_per_s": pick.images_per_s,
            "best_label": best.label, "best_images_per_s": best.images_per_s,
            "default_images_per_s": base.images_per_s, "speedup": speedup, "speedup_ci": [low, high],
            "threshold": threshold, "candidates": len(settings), "is_default": pick is base,
            "within_noise": within_noise if pick is base else None,
            "decoders": compare_decoders(settings, seed=seed)}


def stage_breakdown(stage_s: dict[str, float], end_to_end_s: float) -> list[dict[str, Any]]:
    """Per-image seconds of each stage and its share of the end-to-end time per image; what the stages
    do not explain (sampler, fetch, DataLoader bookkeeping) is `other` (negative when the stages, timed
    alone, sum to more than the pipeline)."""
    if end_to_end_s <= 0:
        raise ValueError("end-to-end time must be positive")
    rows = [{"stage": k, "s_per_image": v, "share": v / end_to_end_s} for k, v in stage_s.items()]
    other = end_to_end_s - sum(stage_s.values())
    rows.append({"stage": "other", "s_per_image": other, "share": other / end_to_end_s})
    return rows


def data_wait_share(loader_images_per_s: float, step_images_per_s: float, overlapped: bool) -> float:
    """Share of each training step spent waiting for data.

    Overlapped (worker processes load while the step runs): a step lasts as long as the slower of the
    two, and waits for the difference. Not overlapped (num_workers=0): loading and the step take turns.
    """
    if loader_images_per_s <= 0 or step_images_per_s <= 0:
        raise ValueError("rates must be positive")
    load, step = 1 / loader_images_per_s, 1 / step_images_per_s
    if overlapped:
        return max(0.0, load - step) / max(load, step)
    return load / (load + step)


# --- cross-case metrics ---------------------------------------------------------------------------
def _ok(r: Result) -> bool:
    return r.ok and bool(r.samples)


def round_medians(result: Result) -> tuple[tuple[int, float], ...]:
    """(round index, median of that round's samples) for each round that gave samples."""
    return tuple((int(meta.get("round", i)), statistics.median(samples))
                 for i, (meta, samples) in enumerate(zip(result.rounds, result.round_samples, strict=True))
                 if samples)


def _settings(results: Sequence[Result]) -> dict[int, list[tuple[Setting, Result]]]:
    out: dict[int, list[tuple[Setting, Result]]] = {}
    for r in results:
        if r.key.benchmark not in ("jpeg_pipeline", "jpeg_knobs") or not _ok(r):
            continue
        p = r.key.params_dict
        s = Setting(p["decoder"], int(p["num_workers"]), p.get("knob", "none"), int(p["batch"]), tuple(r.samples),
                    label=r.key.name, median_s=r.stats.median, rounds=round_medians(r))
        out.setdefault(s.batch, []).append((s, r))
    return out


def _stage_seconds(results: Sequence[Result], decoder: str) -> dict[str, float]:
    """Per-image seconds of the stages one worker of this decoder's pipeline runs: read, this decoder's
    decode, the transform of what it decodes to, collate."""
    wanted = {"read", f"decode-{decoder}", TRANSFORM_STAGE.get(decoder), "collate"}
    per: dict[str, float] = {}
    for r in results:
        if r.key.benchmark != "stage" or not _ok(r) or r.stats is None:
            continue
        name = r.key.params_dict["stage"]
        if name not in wanted:
            continue
        items = r.work.get("items") or 1
        per[name.split("-", 1)[0]] = r.stats.median / items
    return per


def derive(results: list[Result]) -> None:
    """Stage shares on the one-process pipeline, the recommendation, first-batch savings, the input-bound check."""
    by_key = {r.key.name: r for r in results}
    # where the time goes: the stages, timed alone with one thread, against one worker process doing
    # all of them (num_workers=1: the main process only receives batches)
    for r in results:
        if r.key.benchmark != "jpeg_pipeline" or not _ok(r) or int(r.key.params_dict["num_workers"]) != 1:
            continue
        stages = _stage_seconds(results, r.key.params_dict["decoder"])
        if {"read", "decode", "transform", "collate"} <= set(stages):
            r.metrics["stages"] = stage_breakdown(stages, r.stats.median / r.work["items"])
    # the recommendation, per batch size
    recommendations = []
    for pairs in _settings(results).values():
        for _, r in pairs:
            r.recommendation = None  # an earlier pick, before more results came in
        rec = recommend([s for s, _ in pairs])
        if rec is None:
            continue
        next(r for s, r in pairs if s.label == rec["label"]).recommendation = rec
        recommendations.append(rec)
    # persistent workers: the start of epoch 2 with and without; recommended when clearly faster
    persistent_saves: float | None = None
    for r in results:
        p = r.key.params_dict
        if r.key.benchmark != "first_batch" or not _ok(r) or p.get("epoch") != 2 or not p.get("persistent"):
            continue
        other = by_key.get(r.key.name.replace("persistent=True", "persistent=False"))
        if other is not None and _ok(other):
            r.metrics["saved_per_epoch_s"] = other.stats.median - r.stats.median
            if r.stats.ci_high < other.stats.ci_low and p.get("start") == "fork":
                persistent_saves = r.metrics["saved_per_epoch_s"]
    for rec in recommendations:
        rec["persistent_workers"] = rec["num_workers"] > 0 and persistent_saves is not None
        rec["persistent_saves_s"] = persistent_saves if rec["persistent_workers"] else None
    # the input-bound check
    for r in results:
        if r.key.benchmark != "train_step" or not _ok(r):
            continue
        step_rate = r.derived().get("items_per_s")
        rec = max(recommendations, key=lambda x: x["images_per_s"], default=None)
        if not step_rate or rec is None:
            continue
        check = {"step_images_per_s": step_rate, "loader": rec["label"], "loader_images_per_s": rec["images_per_s"],
                 "default_images_per_s": rec["default_images_per_s"],
                 "wait_share": data_wait_share(rec["images_per_s"], step_rate, overlapped=rec["num_workers"] > 0),
                 "wait_share_default": data_wait_share(rec["default_images_per_s"], step_rate, overlapped=False),
                 "same_cpus": r.key.backend == "cpu"}
        r.metrics["input_bound"] = check
    for r in results:
        r.note = result_note(r.metrics, r.recommendation) or None
