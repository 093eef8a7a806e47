"""The dataloader suite's text: a result's note and the lines printed after a run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchbench.output.units import fmt_time

from .pipeline import DECODER_TEXT, DEPRECATED_DECODERS

if TYPE_CHECKING:  # pragma: no cover
    from benchbench import Result

def result_note(metrics: dict[str, Any], rec: dict[str, Any] | None = None) -> str:
    """The results table's note for what derive found on a result."""
    parts = []
    if rec:
        parts.append(f"recommended: {rec['speedup']:.2f}x the default "
                     f"({rec['speedup_ci'][0]:.2f}-{rec['speedup_ci'][1]:.2f})")
    if metrics.get("stages"):
        parts.append("stages: " + ", ".join(f"{row['stage']} {row['share']:.0%}" for row in metrics["stages"]))
    if metrics.get("saved_per_epoch_s") is not None:
        parts.append(f"saves {metrics['saved_per_epoch_s']:.3g} s at each later epoch's start")
    if metrics.get("deprecated"):
        parts.append("deprecated decoder (torchvision.io)")
    if metrics.get("input_bound"):
        check = metrics["input_bound"]
        parts.append(f"waits for data {check['wait_share']:.0%} of a step with the recommended loader, "
                     f"{check['wait_share_default']:.0%} with the default")
    return "; ".join(parts)


# --- text for the end of a run ------------------------------------------------------------------
def _decoder_name(decoder: str) -> str:
    return f"{decoder} (deprecated)" if decoder in DEPRECATED_DECODERS else decoder


def decoder_lines(rec: dict[str, Any]) -> list[str]:
    """The decoders compared: each at its fastest num_workers, and the fastest against the second."""
    dec = rec.get("decoders")
    if not dec or len(dec["ranked"]) < 2:
        return []
    each = ", ".join(f"{_decoder_name(d['decoder'])} {_rate(d['images_per_s'])} ({d['setting']})" for d in dec["ranked"])
    low, high = dec["ratio_ci"]
    verdict = "" if low > 1 else "; not a clear difference here"
    return [f"  decoders at batch {rec['batch']}, each at its fastest (images/s): {each}",
            f"  fastest: {_decoder_name(dec['fastest'])}, {dec['ratio']:.2f}x the second, {_decoder_name(dec['second'])} "
            f"(95% CI {low:.2f}-{high:.2f}x){verdict}"]


def _rate(per_s: float) -> str:
    return f"{per_s:.3g}" if per_s < 100 else f"{per_s:.0f}"


def notes(results: list[Result]) -> list[str]:
    """The per-stage table, the recommendation and the input-bound check, as lines printed after a run."""
    from tabulate import tabulate

    lines: list[str] = []
    for r in sorted(results, key=lambda r: r.key.sort_key()):
        stages = r.metrics.get("stages") if r.key.benchmark == "jpeg_pipeline" else None
        if not stages:
            continue
        p = r.key.params_dict
        batch = int(p["batch"])
        per_image = r.stats.median / batch
        rows = [[row["stage"], fmt_time(row["s_per_image"]), fmt_time(row["s_per_image"] * batch), f"{row['share']:.0%}"]
                for row in stages]
        rows.append(["end to end", fmt_time(per_image), fmt_time(per_image * batch), "100%"])
        lines.append(f"\ndataloader: where the time goes ({DECODER_TEXT[p['decoder']]}, batch {batch}; stages timed "
                     f"alone on one thread, end to end with num_workers=1)")
        lines.extend(tabulate(rows, headers=["stage", "per image", f"per batch of {batch}", "share"],
                              colalign=("left", "right", "right", "right")).splitlines())
    for r in results:
        rec = r.recommendation
        if not rec:
            continue
        low, high = rec["speedup_ci"]
        noise = rec.get("within_noise")
        if rec["is_default"] and noise:
            nlow, nhigh = noise["speedup_ci"]
            lines.append(f"\ndataloader: keep the default (num_workers=0) for batch {rec['batch']}: {noise['setting']} "
                         f"measured {noise['speedup']:.2f}x the default (95% CI {nlow:.2f}-{nhigh:.2f}x), "
                         f"not faster beyond noise")
        elif rec["is_default"]:
            lines.append(f"\ndataloader: keep the default (num_workers=0) for batch {rec['batch']}: no setting measured "
                         f"here is more than {1 - rec['threshold']:.0%} faster ({_rate(rec['images_per_s'])} images/s)")
        else:
            setting = rec["setting"] + (", persistent_workers=True" if rec.get("persistent_workers") else "")
            lines.append(f"\ndataloader: use {setting} for batch {rec['batch']}: {rec['speedup']:.2f}x faster "
                         f"than the default DataLoader(num_workers=0) (95% CI {low:.2f}-{high:.2f}x), "
                         f"{_rate(rec['images_per_s'])} vs {_rate(rec['default_images_per_s'])} images/s")
        if rec["best_label"] != rec["label"] and not noise:
            lines.append(f"  (the fastest, {rec['best_label']}, gives {_rate(rec['best_images_per_s'])} images/s: "
                         f"within {1 - rec['threshold']:.0%})")
        lines.extend(decoder_lines(rec))
    deprecated = next((r.metrics["deprecated"] for r in results if r.metrics.get("deprecated")), None)
    if deprecated:  # once per run, however many cases and calls met the warning
        lines.append(f"dataloader: decoder=torchvision is measured for comparison, but deprecated: {deprecated} "
                     f"TorchCodec (decoder=torchcodec) replaces it.")
    for r in results:
        saved = r.metrics.get("saved_per_epoch_s")
        if saved is not None and r.stats is not None and saved > 0:
            lines.append(f"dataloader: with persistent_workers=True the first batch of epoch 2 and later comes after "
                         f"{fmt_time(r.stats.median)} instead of {fmt_time(r.stats.median + saved)} "
                         f"({r.key.params_dict.get('num_workers')} workers, start method {r.key.params_dict.get('start')})")
    for r in results:
        check = r.metrics.get("input_bound")
        if not check:
            continue
        batch = r.key.params_dict.get("batch")
        shared = " (loader and model share these CPUs, so this is optimistic)" if check["same_cpus"] else ""
        lines.append(f"dataloader: resnet18 training step (batch {batch}, {r.key.backend}) runs at "
                     f"{_rate(check['step_images_per_s'])} images/s; with the recommended loader "
                     f"({_rate(check['loader_images_per_s'])} images/s) a step waits for data "
                     f"{check['wait_share']:.0%} of the time, with the default {check['wait_share_default']:.0%}"
                     + shared)
    return lines
