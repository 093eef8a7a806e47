"""Regenerate the decoders table of docs/dataloader.md from a real dataloader run.

Runs `python -m benchbench run --suite dataloader --profile quick` (or reads a report it wrote,
`--report`), derives the suite's metrics as `run` does, and renders, per batch size, every decoder
measured: its decode cost alone (the `stage` case, one thread), the pipeline's images/s at each
`num_workers`, each with the half width of its 95% interval across rounds, and the recommendation's
comparison of the decoders (the fastest against the second, with the interval of their round ratios). `--write` replaces the table between the markers in
docs/dataloader.md; without it the table is printed.

    PYTHONPATH=. python benchmarks/dataloader_decoders.py --write -o r.json       # measure, then write
    PYTHONPATH=. python benchmarks/dataloader_decoders.py --report r.json --write  # from a report
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbench.model.report import Report, load  # noqa: E402
from benchbench.run import registry  # noqa: E402

DOC = ROOT / "docs" / "dataloader.md"
BEGIN, END = "<!-- decoders table: begin (benchmarks/dataloader_decoders.py) -->", "<!-- decoders table: end -->"


def measure(out: Path) -> None:
    cmd = [sys.executable, "-m", "benchbench", "run", "--suite", "dataloader", "--profile", "quick", "-o", str(out)]
    print("running:", " ".join(cmd[1:]), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def table(report: Report) -> str:
    dl = registry.load_source({"path": str(ROOT / "suites" / "dataloader.py")}).module
    results = [r for r in report.results if r.key.suite == "dataloader"]
    dl.derive(results)
    ok = [r for r in results if r.ok and r.samples]
    decode = {r.key.params_dict["stage"].split("-", 1)[1]: r for r in ok
              if r.key.benchmark == "stage" and r.key.params_dict["stage"].startswith("decode-")}
    lines: list[str] = []
    facts = report.environment.get("facts", {})
    cpu = facts.get("cpu", {})
    lines.append(f"Measured {report.created_at[:10]} with `run --suite dataloader --profile quick` on "
                 f"{cpu.get('model', 'an unknown CPU')} (usable CPUs: {cpu.get('usable_cpus', '?')}, load average "
                 f"{(cpu.get('load_average') or ['?'])[0]} at the start), torch {facts.get('torch', {}).get('version', '?')}, "
                 f"{report.rounds and len(report.rounds)} rounds.")
    for rec in sorted((r.recommendation for r in ok if r.recommendation),
                      key=lambda rec: rec["batch"]):
        batch = rec["batch"]
        pipes = [r for r in ok if r.key.benchmark == "jpeg_pipeline" and int(r.key.params_dict["batch"]) == batch]
        workers = sorted({int(r.key.params_dict["num_workers"]) for r in pipes})
        head = (["decoder", "library", "decode alone, ms per image"]
                + [f"images/s, num_workers={w}" for w in workers])
        lines += ["", f"Batch {batch}:", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        decoders = [d["decoder"] for d in (rec.get("decoders") or {}).get("ranked", [])]
        for decoder in decoders:
            mine = {int(r.key.params_dict["num_workers"]): r for r in pipes if r.key.params_dict["decoder"] == decoder}
            stage = decode.get(decoder)
            per_image = stage.stats.median / (stage.work.get("items") or 1) if stage else None
            any_result = next(iter(mine.values()))
            name = decoder + (" (deprecated)" if any_result.metrics.get("deprecated") else "")
            row = [f"`{name}`", any_result.metrics.get("decoder_version", "?"),
                   f"{_ms(per_image)} ±{stage.stats.rel_ci:.0%}" if stage else "-"]
            row += [f"{mine[w].derived()['items_per_s']:.0f} ±{mine[w].stats.rel_ci:.0%}" if w in mine else "-"
                    for w in workers]
            lines.append("| " + " | ".join(row) + " |")
        lines += [""] + [line.strip() for line in dl.decoder_lines(rec)]
        text = f"recommended: {rec['setting']}, {rec['speedup']:.2f}x the default DataLoader(num_workers=0) " \
               f"(95% CI {rec['speedup_ci'][0]:.2f}-{rec['speedup_ci'][1]:.2f}x)"
        lines.append(text)
    return "\n".join(lines)


def write(doc: Path, text: str) -> None:
    from doc_markers import write_between

    write_between(doc, BEGIN, END, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="a report of `run --suite dataloader` (default: measure now)")
    parser.add_argument("-o", "--output", type=Path, help="keep the report of the run made here at this path")
    parser.add_argument("--write", action="store_true", help=f"write the table into {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.report is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = args.output or Path(tmp) / "dataloader.json"
            measure(path)
            report = load(path)
    else:
        report = load(args.report)
    text = table(report)
    if args.write:
        write(DOC, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
