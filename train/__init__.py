"""Training: `geoforensics train` and its parts (Lightning).

- :mod:`.config`: the YAML run config -> frozen dataclasses (paper defaults, checked keys);
- :mod:`.schedule`: the paper's warm-up + cosine learning-rate schedule;
- :mod:`.spec_cache`: whole-recording uint8 log-mel spectrograms cached on disk;
- :mod:`.datamodule`: splits -> random training windows / dense evaluation windows;
- :mod:`.tasks`: AG-CLIP, regression and classification LightningModules;
- :mod:`.runner`: trainer, checkpoints, resume, export of the best model, summary.

Submodules are imported on demand, so ``import geoforensics.train`` stays light.
"""
