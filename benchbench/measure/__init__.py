"""Timing one case on one backend: the measuring engine, the backends and their timers, peak memory,
energy counters, instruction counts under Valgrind, the usable CPUs, and `validate`'s timer checks.

Above `model`. Torch is imported only inside functions, when a case is measured.
"""
