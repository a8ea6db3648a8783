"""The model families of the memory estimator: one module per architecture (`bert`,
`xlm_roberta`, `gpt_neox`, `modernbert`, `electra`), registered through the
`register_model_families` hook (`builtins`); `base` holds `zoo.ModelFamily` and the registry."""

from zoo.memory.families.base import Families, ModelFamily, builtin_families, collect_families

__all__ = ["Families", "ModelFamily", "builtin_families", "collect_families"]
