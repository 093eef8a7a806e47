"""The dataloader suite's parts, one concern a module: the image set (`images`), the JPEG pipeline and
its DataLoader settings (`pipeline`), timing a loader (`timing`), what the results say (`analysis`) and
the lines printed after a run (`text`). The benchmarks themselves are in `suites/dataloader.py`."""
