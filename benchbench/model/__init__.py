"""The data: reports, their statistics and file formats (benchbench's own, pytest-benchmark's).

The bottom layer. It imports nothing of benchbench but `errors`, and no torch: every other layer reads
and writes `Report` objects.
"""
