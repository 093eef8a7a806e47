"""What built-in suites share with each other and with the core, written once.

- The compile modes of the training and inference suites (a case's `mode` axis): `eager`, and the
  `torch.compile` modes, two of which (CUDA graphs) run on CUDA only.
- The dataloader suite's image batch: 32 images cropped to 224 x 224, 3 channels, float32. The
  environment check that sizes /dev/shm for DataLoader workers reserves room for these batches.

A leaf module: it imports nothing, so the environment checks read it without loading a suite.
"""

from __future__ import annotations

COMPILED_MODES = ("compile", "reduce-overhead", "max-autotune")  # torch.compile(mode=...)
EAGER_AND_COMPILED_MODES = ("eager", *COMPILED_MODES)
CUDA_ONLY_MODES = ("reduce-overhead", "max-autotune")  # CUDA graphs (cudagraph trees)

IMAGE_CROP = 224  # RandomResizedCrop's size in the dataloader suite's transform
IMAGE_BATCH = 32  # the dataloader suite's batch (a DataLoader batch_size)
IMAGE_BATCH_BYTES = IMAGE_BATCH * 3 * IMAGE_CROP * IMAGE_CROP * 4  # float32, 3 channels: what a worker passes on
