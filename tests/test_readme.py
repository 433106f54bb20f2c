"""The README is the user's reference: it must list every config key, and its set-up
commands must be the ones .ci/run executes."""

from __future__ import annotations

import re
from pathlib import Path

from tuneterm.config import RunConfig

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _section_keys(section: str) -> set[str]:
    start = README.index(f"**[{section}]**")
    end = min(i for i in (README.find("\n**[", start + 1), README.find("\n#", start + 1)) if i > 0)
    return set(re.findall(r"^\| `([a-z_0-9]+)` \|", README[start:end], re.M))


def test_config_reference_lists_every_key() -> None:
    tables = RunConfig.tables()  # the built-in sections and the kinds' own tables
    assert {"detect", "text"} <= {name for name, _ in tables}
    for section, model in tables:
        assert _section_keys(section) == set(model.model_fields), section


def test_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    blocks = re.findall(r"<!-- (\w+)-command -->\n```bash\n(.+)\n```", README)
    assert [name for name, _ in blocks] == ["demo", "test"]
    demo, test = (cmd for _, cmd in blocks)
    assert demo.endswith("tuneterm demo") and "pip install" in demo
    assert "pytest" in test and "pip install" in test
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci
