"""One typed schema for a run: TOML in, TOML out, and every error names the field.

One module per concern:

- `schema`: the sections, their fields, defaults, ranges and descriptions;
- `section`: the base of a section, and what the kinds plug in: their own tables
  (`KindSection`) and the checks that need their registry (`KindRules`), both filled by
  `tuneterm.tasks` when it is imported (every entry point imports it);
- `choices`: every choice list, written once (kinds and data sets from the kinds' rules);
- `checks`: validation and the cross-field checks (`from_dict`);
- `tomlio`: TOML in (`load`, `loads`) and out (`to_toml`, `template`);
- `overrides`: `--set section.key=value`;
- `catalog`: model names and weights from torchvision, cached per library version;
- `sources`: where a classifier comes from (torchvision, timm, hf), their names and checks;
- `modelnames`: `model.name` as the editor offers and checks it, cheaply, while it is typed;
- `launch`: the checks made before a run is created (models, weights, checkpoints, runs,
  devices), all without torch;
- `errors`: `ConfigIssue` and `ConfigError`.

Nothing here imports torch.
"""

from __future__ import annotations

from tuneterm.config.checks import from_dict, installed
from tuneterm.config.choices import check_choice
from tuneterm.config.kindrules import CHOICES, choices
from tuneterm.config.overrides import apply_overrides
from tuneterm.config.renamed import kind_name
from tuneterm.config.schema import (
    AdaptSection,
    DataSection,
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
    TrainSection,
)
from tuneterm.config.section import KindSection, Section
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
    "DistSection",
    "DistillSection",
    "EarlyStopSection",
    "EmaSection",
    "FreezeSection",
    "HeadSection",
    "HealthSection",
    "KindSection",
    "LoraSection",
    "MixSection",
    "ModelSection",
    "RunConfig",
    "RunSection",
    "ScriptSection",
    "Section",
    "SpeedSection",
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
    "parse_toml",
    "run_config",
    "template",
    "to_toml",
]
