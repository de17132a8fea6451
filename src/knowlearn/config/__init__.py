"""Dataclass configs: YAML in, `key=value` overrides, unknown keys rejected.

schema.py holds the dataclasses (each field's help in its metadata), checks.py the range
checks of RunConfig.validate, coerce.py mappings <-> dataclasses, load.py YAML and
overrides, paths.py presets and input paths. Every name importers use is here.
"""

from knowlearn.config.coerce import choice_problem, flatten, from_dict, renamed_keys, to_dict
from knowlearn.config.load import (
    UniqueKeyLoader,
    load_config,
    load_yaml,
    merge,
    parse_override,
    save_config,
)
from knowlearn.config.paths import (
    CONFIGS,
    INPUT_PATHS,
    absolute_inputs,
    expand_user,
    find_config,
    resolve_paths,
    shipped_presets,
)
from knowlearn.config.schema import (
    AugmentConfig,
    BaseConfig,
    DataConfig,
    EvalConfig,
    FormatConfig,
    LoraConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SAMConfig,
    StageConfig,
    option,
)

__all__ = [
    "flatten",
    "renamed_keys",
    "CONFIGS",
    "INPUT_PATHS",
    "AugmentConfig",
    "BaseConfig",
    "DataConfig",
    "EvalConfig",
    "FormatConfig",
    "LoraConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "SAMConfig",
    "StageConfig",
    "UniqueKeyLoader",
    "absolute_inputs",
    "choice_problem",
    "expand_user",
    "find_config",
    "from_dict",
    "load_config",
    "load_yaml",
    "merge",
    "option",
    "parse_override",
    "resolve_paths",
    "save_config",
    "shipped_presets",
    "to_dict",
]
