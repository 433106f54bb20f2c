"""Security under faults (extends tests/test_boundaries.py and tests/test_store_runs.py):
signals only ever reach the run's own process, pickles in checkpoints never execute, no module
deserialises with pickle, and names and ids typed at the CLI cannot reach outside the store."""

from __future__ import annotations

import ast
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers.cli import Cli
from helpers.fake_store import make_run

from tuneterm.proc import ENGINE_MARKER
from tuneterm.runs import launcher
from tuneterm.store.meta import load_meta, save_meta
from tuneterm.store.runs import RunStore

PKG = Path(__file__).resolve().parents[1] / "tuneterm"


def _sleeper(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])


def _claim(store: RunStore, run_id: str, pid: int, start: float) -> None:
    """Make the run's meta.json record `pid`/`start` as its engine, status running."""
    path = store.run_dir(run_id) / "meta.json"
    meta = load_meta(path)
    meta.status, meta.pid, meta.pid_start, meta.ended = "running", pid, start, None
    save_meta(path, meta)


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(
    "who", ["cmdline-lacks-run-id", "cmdline-lacks-marker", "other-runs-engine", "wrong-start"]
)
def test_stop_and_kill_never_signal_a_foreign_process(
    tmp_path: Path, who: str, force: bool
) -> None:
    store = RunStore(tmp_path / "store")
    run_id = make_run(store, "victim").id
    other = make_run(store, "other").id
    argv = {
        "cmdline-lacks-run-id": [ENGINE_MARKER],
        "cmdline-lacks-marker": [run_id],
        "other-runs-engine": [ENGINE_MARKER, other],
        "wrong-start": [ENGINE_MARKER, run_id],
    }[who]
    proc = _sleeper(*argv)
    try:
        start = psutil.Process(proc.pid).create_time()
        _claim(store, run_id, proc.pid, start - 30 if who == "wrong-start" else start)
        assert store.info(run_id).status == "crashed"  # not ours: never counted as alive
        with pytest.raises(launcher.RunStateError):
            launcher.stop(store, run_id, force=force, wait=0.5)
        with pytest.raises(launcher.RunStateError):
            launcher.kill(store, run_id)
        time.sleep(0.2)
        assert proc.poll() is None, "a foreign process was signalled"
    finally:
        proc.kill()
        proc.wait()


def test_the_runs_own_process_is_signalled(tmp_path: Path) -> None:
    """The control: with pid, start time and command line all matching, stop does signal."""
    store = RunStore(tmp_path / "store")
    run_id = make_run(store, "mine").id
    proc = _sleeper(ENGINE_MARKER, run_id)
    try:
        _claim(store, run_id, proc.pid, psutil.Process(proc.pid).create_time())
        assert store.info(run_id).status == "running"
        launcher.stop(store, run_id, force=True, wait=5)
        proc.wait(5)  # ended (psutil may have reaped it first, so no exit status to check)
        assert not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == "zombie"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_stop_force_refuses_a_pid_reused_by_a_sleeper(tmp_path: Path, cli: Cli) -> None:
    store = RunStore(tmp_path / "store")
    cli.runs = store.root
    run_id = make_run(store, "victim").id
    proc = _sleeper()  # a live process holding the recorded pid, not an engine at all
    try:
        _claim(store, run_id, proc.pid, psutil.Process(proc.pid).create_time())
        for args in (["stop", run_id], ["stop", run_id, "--force"], ["rm", run_id, "--force"]):
            result = cli(*args)
            assert result.returncode in (0, 3), result.stderr
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {os.environ.get('PAYLOAD_MARK', '/nonexistent/x')}",))


def test_a_pickled_payload_in_a_checkpoint_never_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from tuneterm.engine import checkpoint

    mark = tmp_path / "pwned"
    monkeypatch.setenv("PAYLOAD_MARK", str(mark))
    evil = tmp_path / "evil.pt"
    torch.save({"model": _Payload()}, evil)
    with open(tmp_path / "plain.pkl", "wb") as fh:
        pickle.dump(_Payload(), fh)
    for path in (evil, tmp_path / "plain.pkl"):
        with pytest.raises(Exception, match=r"(?i)weights_only|unpickl|unsupported"):
            checkpoint.load(path)
    assert not mark.exists()


def test_nothing_deserialises_with_pickle_marshal_or_shelve() -> None:
    banned = {"pickle", "cPickle", "dill", "marshal", "shelve", "jsonpickle", "joblib"}
    for path in sorted(PKG.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned, path
            elif isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in banned, path
                if node.module == "torch":  # `from torch import load` would hide a bare load
                    assert "load" not in {a.name for a in node.names}, path
            elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("yaml.load"):
                raise AssertionError(f"{path}: yaml.load")


@pytest.mark.parametrize(
    "args",
    [
        ["label", "{id}", "--name", "../../escape"],
        ["label", "{id}", "--name", "a/b"],
        ["show", "../{id}"],
        ["show", "/etc/passwd"],
        ["rm", "../store/{id}"],
        ["resume", "..%2f{id}"],
        ["events", "{id}/../../x"],
    ],
)
def test_cli_names_and_ids_cannot_escape_the_runs_folder(
    tmp_path: Path, cli: Cli, args: list[str]
) -> None:
    store = RunStore(tmp_path / "store")
    cli.runs = store.root
    run_id = make_run(store, "kept").id
    outside = tmp_path / "escape"
    result = cli(*[a.format(id=run_id) for a in args])
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert store.ids() == [run_id] and store.info(run_id).name == "kept"
    assert not outside.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "runs",
        "store",
    ]
