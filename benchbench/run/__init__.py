"""Running suites: the suite registry, worker processes, rounds and their order, the session loop that
writes a report as it goes, `ab`'s block-interleaved sides, progress lines, and the gate's re-run.

Above `measure`, `metrics` and `analysis`; below `commands`.
"""
