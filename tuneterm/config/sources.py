"""Where a classifier comes from (`model.source`): torchvision, timm or Hugging Face.

A registry of sources, read by the schema, the checks, `tuneterm models` and the editor. Two
spellings name a source: `model.source = "timm"`, or a prefix on the name
(`model.name = "timm/convnext_tiny.fb_in22k"`, `"hf/google/vit-base-patch16-224"`).

timm's model names are listed once per timm version (importing timm imports torch: seconds)
and cached beside the torchvision catalog (`tuneterm.config.catalog`), so checking a name at
launch stays fast. Hugging Face models are local `save_pretrained` folders or hub names.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneterm.config import catalog
from tuneterm.config.checks import installed
from tuneterm.config.choices import MODEL_SOURCES
from tuneterm.config.launch import reachable
from tuneterm.errors import ConfigIssue

if TYPE_CHECKING:
    from tuneterm.config.schema import ModelSection, RunConfig


@dataclass(frozen=True)
class Source:
    """One place classifiers come from."""

    name: str
    summary: str
    package: str = ""  # the import it needs beyond the core ("" = core)
    extra: str = ""  # pip install 'tuneterm[extra]'


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("torchvision", "torchvision's classifiers and their weights API"),
        Source("timm", "timm's create_model: any timm architecture or pretrained tag", "timm"),
        Source(
            "hf",
            "Hugging Face AutoModelForImageClassification: a save_pretrained folder or a hub name",
            "transformers",
            "hf",
        ),
    )
}
assert tuple(SOURCES) == MODEL_SOURCES
HF_HOST = "huggingface.co"


def split(model: ModelSection) -> tuple[str, str]:
    """(source, name) of a model section: a `timm/` or `hf/` prefix wins over model.source."""
    head, sep, rest = model.name.partition("/")
    if sep and head in SOURCES and rest:
        return head, rest
    return model.source, model.name


def missing_package(source: str) -> str | None:
    """The pip command a source needs, when its package is not installed here."""
    s = SOURCES[source]
    if not s.package or installed(s.package):
        return None
    return f"needs {s.package}, not installed here: pip install 'tuneterm[{s.extra or s.name}]'"


# -- timm's names, cached per timm version ----------------------------------------------------
def _timm_key() -> str:
    try:
        v = version("timm")
    except PackageNotFoundError:
        v = "none"
    return f"timm-{v}_v{catalog.FORMAT}".replace("+", "-")


def timm_cached() -> dict[str, Any] | None:
    """timm's names as cached for the installed timm, without importing it; None when not
    cached yet (`tuneterm models --source timm`, a launch or the editor's picker writes it)."""
    key = _timm_key()
    try:
        data = json.loads((catalog.cache_dir() / f"models-{key}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == key else None


@cache
def _timm_catalog() -> dict[str, Any]:
    data = timm_cached()
    if data is not None:
        return data
    key = _timm_key()
    path = catalog.cache_dir() / f"models-{key}.json"
    import timm

    data = {
        "key": key,
        "architectures": sorted(timm.list_models()),
        "pretrained": sorted(timm.list_models(pretrained=True)),
    }
    catalog._write(path, data)
    return data


def timm_models(pattern: str = "", pretrained: bool = False) -> list[str]:
    """timm's architectures (or, with `pretrained`, its `arch.tag` weights), matching a glob."""
    names = _timm_catalog()["pretrained" if pretrained else "architectures"]
    return [n for n in names if not pattern or fnmatch.fnmatch(n, pattern)]


def listing(source: str, pattern: str = "", pretrained: bool = False) -> dict[str, str]:
    """What `model.name` can be for a source: name -> a note (`tuneterm models --source`)."""
    if source == "timm":
        return dict.fromkeys(timm_models(pattern, pretrained), "")
    if source == "hf":
        cached = {n: "in the Hugging Face cache" for n in hf_cached_models()}
        return {
            "DIR": "a local save_pretrained folder (config.json, model weights)",
            "ORG/NAME": "a Hugging Face hub image classifier, cached or downloaded",
            **{n: v for n, v in cached.items() if not pattern or fnmatch.fnmatch(n, pattern)},
        }
    names = catalog.models("classify")
    if pretrained:
        names = [n for n in names if (m := catalog.model(n)) is not None and m.default]
    return dict.fromkeys((n for n in names if not pattern or fnmatch.fnmatch(n, pattern)), "")


# -- launch checks ------------------------------------------------------------------------
def model_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """model.name and model.weights of a timm or hf classifier (torchvision: launch.py)."""
    source, name = split(cfg.model)
    if source not in SOURCES:  # the schema's choice check reports it
        return []
    need = missing_package(source)
    if need:
        return [ConfigIssue("model.source", source, need)]
    if source == "timm":
        return _timm_issues(cfg, name)
    if source == "hf":
        return _hf_issues(cfg, name)
    return []


def weights_file(weights: str) -> Path | None:
    """model.weights naming a local file (timm: loaded through pretrained_cfg_overlay)."""
    if weights in ("DEFAULT", "none") or not weights.endswith(
        (".pth", ".pt", ".bin", ".safetensors")
    ):
        return None
    return Path(weights).expanduser()


def _timm_issues(cfg: RunConfig, name: str) -> list[ConfigIssue]:
    field = "model.name"
    arch, _, tag = name.partition(".")
    known = timm_models()
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=3)
        hint = (
            f"did you mean {', '.join(close)}?" if close else "see `tuneterm models --source timm`"
        )
        return [ConfigIssue(field, cfg.model.name, f"unknown timm model; {hint}")]
    if tag and name not in timm_models(pretrained=True):
        tags = timm_models(f"{arch}.*", pretrained=True)
        hint = f"{arch} has {', '.join(tags)}" if tags else f"{arch} has no pretrained weights"
        return [ConfigIssue(field, cfg.model.name, f"unknown pretrained tag; {hint}")]
    weights = cfg.model.weights
    file = weights_file(weights)
    if file is not None:
        # whether it fits the architecture: the engine's launch check (it needs torch)
        ok = file.is_file()
        return [] if ok else [ConfigIssue("model.weights", weights, "no such weights file")]
    if weights not in ("DEFAULT", "none"):
        return [
            ConfigIssue(
                "model.weights",
                weights,
                'for timm: "DEFAULT" (the pretrained tag\'s weights), "none", or a local '
                ".pth/.safetensors file",
            )
        ]
    if weights != "DEFAULT" or cfg.model.init:
        return []
    if name not in timm_models(pretrained=True) and not timm_models(f"{arch}.*", pretrained=True):
        return [
            ConfigIssue(
                "model.weights",
                "DEFAULT",
                f'{arch} has no pretrained weights in timm; set model.weights = "none"',
            )
        ]
    if catalog_reachable():
        return []
    repo = timm_hub_id(name)
    if repo and not _hf_cached(repo):
        return [
            ConfigIssue(
                "model.weights",
                "DEFAULT",
                f"timm's weights for {name} ({HF_HOST}/{repo}) are not cached in {hf_cache()} "
                f"and {HF_HOST} cannot be reached. Download them on a machine online "
                f"(huggingface-cli download {repo}) and copy models--{repo.replace('/', '--')} "
                'there, or set model.weights to a local .pth/.safetensors file, or to "none"',
            )
        ]
    return []


def teacher_issues(cfg: RunConfig) -> list[ConfigIssue]:
    """distill.teacher = "timm:<name>" or "hf:<name>": a model of that source."""
    t = cfg.distill.teacher
    source, _, name = t.partition(":")
    if source not in ("timm", "hf"):
        return []
    model = cfg.model.model_copy(update={"source": source, "name": name, "weights": "DEFAULT"})
    found = model_issues(cfg.model_copy(update={"model": model}))
    return [ConfigIssue("distill.teacher", t, i.reason) for i in found]


def timm_hub_id(name: str) -> str:
    """The Hugging Face repo timm downloads `name`'s weights from ("" if not from the hub)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    return str(getattr(cfg, "hf_hub_id", "") or "") if cfg is not None else ""


def _hf_issues(cfg: RunConfig, name: str) -> list[ConfigIssue]:
    weights = cfg.model.weights
    if weights not in ("DEFAULT", "none"):
        return [
            ConfigIssue(
                "model.weights", weights, 'for hf: "DEFAULT" (the folder\'s or repo\'s) or "none"'
            )
        ]
    found = hf_name_issues(cfg, name)
    if found or Path(name).expanduser().is_dir() or _hf_cached(name) or catalog_reachable():
        return found
    return [
        ConfigIssue(
            "model.name",
            cfg.model.name,
            f"not in the Hugging Face cache ({hf_cache()}) and {HF_HOST} cannot be reached. "
            f"On a machine online, save it with AutoModelForImageClassification.from_pretrained"
            f'("{name}").save_pretrained(DIR) (and its image processor), copy DIR here and set '
            'model.name = "hf/DIR"',
        )
    ]


def hf_name_issues(cfg: RunConfig, name: str) -> list[ConfigIssue]:
    """What is wrong with an hf model name on this machine alone (no network): a folder
    without config.json or of another kind of model, or a name that is no folder and no
    ORG/NAME."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        config = folder / "config.json"
        if not config.is_file():
            return [ConfigIssue("model.name", cfg.model.name, f"{folder} has no config.json")]
        try:
            arch = json.loads(config.read_text()).get("architectures") or []
        except (OSError, ValueError) as exc:
            return [ConfigIssue("model.name", cfg.model.name, f"unreadable config.json: {exc}")]
        if arch and not any("ImageClassification" in a or a[-5:] == "Model" for a in arch):
            return [
                ConfigIssue("model.name", cfg.model.name, f"not an image model ({', '.join(arch)})")
            ]
        return []
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        return [
            ConfigIssue(
                "model.name",
                cfg.model.name,
                "no such folder, and not a hub name ORG/NAME; `tuneterm models --source hf`",
            )
        ]
    return []


def hf_cache() -> Path:
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface"
    )
    return Path(os.environ.get("HF_HUB_CACHE") or Path(home) / "hub").expanduser()


def _hf_cached(repo: str) -> bool:
    return (hf_cache() / f"models--{repo.replace('/', '--')}").is_dir()


def hf_cached_models() -> list[str]:
    """The hub models in the local Hugging Face cache, as ORG/NAME."""
    try:
        folders = sorted(p.name for p in hf_cache().iterdir() if p.is_dir())
    except OSError:
        return []
    return [f.removeprefix("models--").replace("--", "/", 1) for f in folders
            if f.startswith("models--") and f.count("--") == 2]  # fmt: skip


def catalog_reachable() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False

    return reachable(HF_HOST)
