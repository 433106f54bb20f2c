"""One typed schema for a run: TOML in, TOML out, and every error names the field.

One module per concern:

- `schema`: the sections, their fields, defaults, ranges and descriptions;
- `choices`: every choice list, written once (kinds and data sets from `tuneterm.tasks`);
- `checks`: validation and the cross-field checks (`from_dict`);
- `tomlio`: TOML in (`load`, `loads`) and out (`to_toml`, `template`);
- `overrides`: `--set section.key=value`;
- `catalog`: model names and weights from torchvision, cached per library version;
- `launch`: the checks made before a run is created (models, weights, checkpoints, runs,
  devices), all without torch;
- `errors`: `ConfigIssue` and `ConfigError`.

Nothing here imports torch.
"""

from __future__ import annotations

from tuneterm.config.checks import from_dict, installed, missing_packages
from tuneterm.config.choices import CHOICES, check_choice, choices
from tuneterm.config.overrides import apply_overrides
from tuneterm.config.renamed import kind_name
from tuneterm.config.schema import (
    AdaptSection,
    DataSection,
    DetectSection,
    DistillSection,
    DistSection,
    EarlyStopSection,
    EmaSection,
    FreezeSection,
    HeadSection,
    HealthSection,
    LoraSection,
    MixSection,
    ModelSection,
    RunConfig,
    RunSection,
    ScriptSection,
    SpeedSection,
    TextSection,
    TrainSection,
    model_label,
)
from tuneterm.config.tomlio import (
    flatten,
    load,
    loads,
    parse_toml,
    run_config,
    template,
    to_toml,
)
from tuneterm.errors import ConfigError, ConfigIssue

__all__ = [
    "CHOICES",
    "AdaptSection",
    "ConfigError",
    "ConfigIssue",
    "DataSection",
    "DetectSection",
    "DistSection",
    "DistillSection",
    "EarlyStopSection",
    "EmaSection",
    "FreezeSection",
    "HeadSection",
    "HealthSection",
    "LoraSection",
    "MixSection",
    "ModelSection",
    "RunConfig",
    "RunSection",
    "ScriptSection",
    "SpeedSection",
    "TextSection",
    "TrainSection",
    "apply_overrides",
    "check_choice",
    "choices",
    "flatten",
    "from_dict",
    "installed",
    "kind_name",
    "load",
    "loads",
    "missing_packages",
    "model_label",
    "parse_toml",
    "run_config",
    "template",
    "to_toml",
]
