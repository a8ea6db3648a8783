"""The training engine: the only part of zoo that imports torch and transformers."""
