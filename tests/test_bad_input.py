"""Bad input, table-driven: each case gives a clear message, the documented exit code, no
half-made run, and no harm to the run already in the store.

Cases found before launch run the real CLI in-process (`tuneterm.cli.main`, so torchvision is
imported once for the whole table) and must exit 2 with no run folder created. Cases only a
running engine can meet (out of memory, a full disk) run the real engine process through the
`TUNETERM_FAULT` test hook (tuneterm/engine/faults.py); mixed grayscale/RGBA/palette images
must train.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers.cli import TINY
from helpers.fake_store import make_run
from PIL import Image

from tuneterm.cli import main
from tuneterm.runs.lifecycle import new_run
from tuneterm.store.runs import RunStore


def _png(path: Path, mode: str = "RGB", shade: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    color: object = {"L": shade, "RGBA": (shade, shade, 200, 128), "P": shade}.get(
        mode, (shade, 100, 200)
    )
    Image.new(mode, (12, 12), color).save(path)  # type: ignore[arg-type]


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _classes(root: Path, names: tuple[str, ...] = ("cat", "dog"), n: int = 5) -> None:
    for i, name in enumerate(names):
        for j in range(n):
            _png(root / name / f"{j}.png", shade=30 + 150 * i)


def data_ok(root: Path) -> None:
    _classes(root)


def data_empty_class(root: Path) -> None:
    _classes(root)
    (root / "bird").mkdir()


def data_non_image_files(root: Path) -> None:
    _classes(root)
    (root / "bird").mkdir()
    (root / "bird" / "notes.txt").write_text("not an image")
    (root / "bird" / "labels.csv").write_text("a,b\n")


def data_corrupt_image(root: Path) -> None:
    _classes(root)
    (root / "dog" / "bad.png").write_bytes(os.urandom(300))


def data_text_named_jpg(root: Path) -> None:
    _classes(root)
    (root / "cat" / "readme.jpg").write_text("this is text, not a JPEG")


def data_truncated_png(root: Path) -> None:
    _classes(root)
    good = (root / "cat" / "0.png").read_bytes()
    (root / "cat" / "cut.png").write_bytes(good[: len(good) // 2])


def data_truncated_jpeg(root: Path) -> None:
    _classes(root)
    raw = _jpeg_bytes()
    (root / "dog" / "cut.jpg").write_bytes(raw[: len(raw) // 2])


def data_single_class(root: Path) -> None:
    _classes(root, ("cat",))


def data_split_mismatch(root: Path) -> None:
    _classes(root / "train", ("cat", "dog"))
    _classes(root / "val", ("cat", "fox"))


def data_no_class_folders(root: Path) -> None:
    for j in range(4):
        _png(root / f"{j}.png")


def data_val_without_train(root: Path) -> None:
    _classes(root / "val")


@dataclass
class Case:
    id: str
    message: str  # must appear in stderr
    sets: list[str] = field(default_factory=list)
    toml: str | None = None  # the config text (default TINY)
    data: Callable[[Path], None] | None = None  # builds data.root (dataset = folder)
    args: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # written under tmp_path; {tmp} in sets


FOLDER = ["--set", "data.dataset=folder", "--set", "data.classes=[]", "--set", "data.per_class=0"]

CASES = [
    # -- config --------------------------------------------------------------------------
    Case("toml-syntax", "syntax error", toml="[train\nlr = 1"),
    Case("toml-duplicate-key", "syntax error", toml="[train]\nlr = 1\nlr = 2"),
    Case("unknown-key", "train.lrr = 0.1: unknown key; did you mean lr?", ["train.lrr=0.1"]),
    Case("unknown-section", "trian", toml=TINY + "\n[trian]\nlr = 0.1\n"),
    Case("wrong-type-int", "train.epochs", ["train.epochs=many"]),
    Case("wrong-type-float-for-int", "train.batch_size", ["train.batch_size=1.5"]),
    Case("wrong-type-list", "data.classes", ['data.classes="0"']),
    Case("out-of-range-lr", "train.lr = -0.1: must be > 0", ["train.lr=-0.1"]),
    Case("out-of-range-size", "data.image_size = 4: must be >= 8", ["data.image_size=4"]),
    Case("out-of-range-fraction", "data.val_fraction", ["data.val_fraction=1.5"]),
    Case("unknown-model", "unknown model; did you mean resnet18?", ["model.name=resnet19"]),
    Case("unknown-weights", "model.weights", ["model.weights=IMAGENET9K"]),
    Case("unknown-dataset", 'data.dataset = "digitz": unknown choice', ["data.dataset=digitz"]),
    Case("missing-root", "no such folder", ["data.dataset=folder", "data.root=/no/such/dir"]),
    Case("missing-init", "no such checkpoint file", ["model.init=/no/such/file.pt"]),
    Case(
        "init-text-file",
        'model.init = "{tmp}/notes.pt": not a checkpoint',
        ["model.init={tmp}/notes.pt"],
        files={"notes.pt": b"these are notes, not weights\n"},
    ),
    Case(
        "init-garbage",
        'model.init = "{tmp}/junk.pt": not a checkpoint',
        ["model.init={tmp}/junk.pt"],
        files={"junk.pt": bytes(range(256)) * 4},
    ),
    Case(
        "init-zip-not-torch",
        'model.init = "{tmp}/a.zip": a zip file but not a checkpoint',
        ["model.init={tmp}/a.zip"],
        files={"a.zip": b"PK\x05\x06" + bytes(18)},  # an empty zip archive
    ),
    Case(
        "teacher-unknown-run",
        "distill.teacher = \"run:nosuch\": run = 'nosuch': no such run",
        ["distill.teacher=run:nosuch"],
    ),
    Case(
        "teacher-unknown-torchvision-model",
        'distill.teacher = "torchvision:resnet19": unknown model; did you mean '
        "torchvision:resnet18?",
        ["distill.teacher=torchvision:resnet19"],
    ),
    Case(
        "teacher-garbage-file",
        'distill.teacher = "{tmp}/t.pt": not a checkpoint',
        ["distill.teacher={tmp}/t.pt"],
        files={"t.pt": b"\x00" * 64},
    ),
    Case("missing-config-file", "cannot read", args=["MISSING"]),
    Case("bad-override", "--set", ["lr"]),
    Case("unknown-class", "['7x'] not in the data set", ['data.classes=["0","7x"]']),
    Case("single-class-selected", "a single class", ['data.classes=["0"]']),
    Case("relabel-unknown", "not in the data set's classes", ['data.relabel={a=["0"],b=["9"]}']),
    # -- data ----------------------------------------------------------------------------
    Case("empty-class-folder", "has no images: it holds nothing", data=data_empty_class),
    Case(
        "non-image-files", "only non-image files (labels.csv, notes.txt)", data=data_non_image_files
    ),
    Case("corrupt-image", "cannot be decoded (checked all", data=data_corrupt_image),
    Case("text-named-jpg", "readme.jpg", data=data_text_named_jpg),
    Case("truncated-png", "cut.png", data=data_truncated_png),
    Case("truncated-jpeg", "cut.jpg", data=data_truncated_jpeg),
    Case("single-class-folder", "a single class (cat)", data=data_single_class),
    Case("train-val-classes-differ", "only in val/: ['fox']", data=data_split_mismatch),
    Case("no-class-folders", "has no class folders", data=data_no_class_folders),
    Case("val-without-train", "no train/ folder", data=data_val_without_train),
]


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


Bystander = tuple[RunStore, str, dict[str, str]]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may download a model or dataset."""


@pytest.fixture
def bystander(tmp_path: Path) -> Bystander:
    """A finished run already in the store: bad input must not touch it."""
    store = RunStore(tmp_path / "runs")
    info = make_run(store, "bystander")
    return store, info.id, _digest(info.path)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_before_anything_is_created(
    case: Case,
    tmp_path: Path,
    bystander: Bystander,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, other, before = bystander
    config = tmp_path / "c.toml"
    config.write_text(case.toml if case.toml is not None else TINY)
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content)
    sets = [a for s in case.sets for a in ("--set", s.replace("{tmp}", str(tmp_path)))]
    if case.data is not None:
        root = tmp_path / "data"
        root.mkdir()
        case.data(root)
        sets += [*FOLDER, "--set", f"data.root={root}"]
    path = str(tmp_path / "missing.toml") if case.args == ["MISSING"] else str(config)
    code = main(["--runs-dir", str(store.root), "run", path, *sets, "--json"])
    out = capsys.readouterr()
    assert code == 2, (code, out.err)
    assert case.message.replace("{tmp}", str(tmp_path)) in out.err, out.err
    assert json.loads(out.out)["exit_code"] == 2  # --json: the error as JSON on stdout
    assert store.ids() == [other], "a run folder was created"
    assert sorted(p.name for p in store.root.iterdir()) == [other], "something was left behind"
    assert _digest(store.run_dir(other)) == before
    assert store.info(other).status == "completed"


def test_cuda_device_on_a_machine_without_cuda_is_refused(
    tmp_path: Path,
    bystander: Bystander,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No device is visible to torch under an empty device mask, GPU or not."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    store, other, _ = bystander
    config = tmp_path / "c.toml"
    config.write_text(TINY)
    code = main(["--runs-dir", str(store.root), "run", str(config), "--set", "train.device=cuda"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert 'train.device = "cuda": CUDA is not available here' in err, err
    assert store.ids() == [other]


def test_a_teacher_run_without_best_pt_or_of_another_kind_is_refused(
    tmp_path: Path, bystander: Bystander, capsys: pytest.CaptureFixture[str]
) -> None:
    from tuneterm.config import loads

    store, other, _ = bystander
    text = store.create(new_run(loads('[run]\ntask = "text"\n[data]\ndataset = "topics"\n')))
    (store.checkpoint_dir(text.id) / "best.pt").parent.mkdir(parents=True, exist_ok=True)
    (store.checkpoint_dir(text.id) / "best.pt").write_bytes(b"not read by this check")
    config = tmp_path / "c.toml"
    config.write_text(TINY)
    for ref, message in (
        (other, f"run {other} has no best.pt"),
        (text.id, f"run {text.id} is a text run; this is a classify run"),
    ):
        sets = ["--set", f"distill.teacher=run:{ref}"]
        code = main(["--runs-dir", str(store.root), "run", str(config), *sets])
        err = capsys.readouterr().err
        assert code == 2, err
        assert f'distill.teacher = "run:{ref}": {message}' in err, err
    assert sorted(store.ids()) == sorted([other, text.id])


def test_a_real_checkpoint_is_accepted_as_model_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What torch.save writes passes the torch-free checkpoint check; the rest does not."""
    import torch

    from tuneterm.config.launch import checkpoint_problem

    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "classes": ["a", "b"]}, good)
    assert checkpoint_problem(good) is None
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], listed)
    assert "no dict of weights" in str(checkpoint_problem(listed))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:200])
    assert checkpoint_problem(cut) is not None


def test_large_folders_are_checked_on_a_sample_and_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuneterm.config import loads
    from tuneterm.tasks.classify import datacheck

    monkeypatch.setattr(datacheck, "FULL_CHECK", 8)
    monkeypatch.setattr(datacheck, "SAMPLE", 10)
    root = tmp_path / "data"
    _classes(root, n=6)
    for j in range(6):
        (root / "dog" / f"bad{j}.png").write_bytes(b"junk")
    cfg = loads(TINY, [*(s for s in FOLDER[1::2]), f"data.root={root}"])
    issues = datacheck.check(cfg)
    assert len(issues) == 1 and "checked a sample of 10 of 18" in issues[0].reason, issues


# -- things only a running engine meets -------------------------------------------------------
MIXED = TINY.replace('dataset = "digits"', 'dataset = "folder"').replace(
    'classes = ["0", "1", "2"]\nper_class = 40\n', ""
)


def _mixed_modes(root: Path) -> None:
    """Grayscale, RGBA, palette and RGB images side by side, plus files that are not images."""
    for i, name in enumerate(("dark", "light")):
        for j, mode in enumerate(("L", "RGBA", "P", "RGB") * 3):
            _png(root / name / f"{j}.png", mode, shade=20 + 200 * i)
        (root / name / "README.txt").write_text("ignored")
        (root / name / ".DS_Store").write_bytes(b"\0\1")


def test_grayscale_rgba_and_palette_images_mixed_train_to_completion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Also under umask 0: nothing the store, launcher or engine creates is world-writable."""
    root = tmp_path / "data"
    _mixed_modes(root)
    config = tmp_path / "c.toml"
    config.write_text(MIXED.replace("epochs = 4", "epochs = 2"))
    runs = tmp_path / "new" / "runs"  # the store creates its parent folders too
    old = os.umask(0)
    try:
        code = main(["--runs-dir", str(runs), "run", str(config), "--set", f"data.root={root}"])
    finally:
        os.umask(old)
    out = capsys.readouterr()
    assert code == 0, out
    info = RunStore(runs).list()[0]
    assert info.status == "completed" and info.meta is not None
    assert info.meta.classes == ["dark", "light"]
    made = [runs.parent, runs, *runs.rglob("*")]
    writable = [str(p) for p in made if p.stat().st_mode & 0o002]
    assert writable == [], writable
    assert len(made) > 8


def _run_failing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str, epochs: int
) -> tuple[str, RunStore, str, str]:
    """A run with a fault injected: what the follower printed, the store, the run and its
    error, once the CLI said the run failed."""
    os.environ["TUNETERM_FAULT"] = fault
    try:
        config = tmp_path / "c.toml"
        config.write_text(TINY.replace("epochs = 4", f"epochs = {epochs}"))
        runs = tmp_path / "runs"
        code = main(["--runs-dir", str(runs), "run", str(config)])
    finally:
        del os.environ["TUNETERM_FAULT"]
    store = RunStore(runs)
    run_id = store.ids()[0]
    info = store.info(run_id)
    assert code == 1 and info.status == "failed" and info.meta is not None
    return capsys.readouterr().out, store, run_id, info.meta.error


def test_out_of_memory_fails_with_a_smaller_batch_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, store, run_id, error = _run_failing(tmp_path, capsys, "oom@step3", epochs=1)
    hint = (
        "out of memory with train.batch_size = 16: try a smaller batch, e.g. train.batch_size = 8"
    )
    assert hint in error and "--set train.batch_size=8" in error
    assert "out of memory" in out  # the follower printed it
    events = list(store.events(run_id))
    assert any(e["kind"] == "error" and hint in e["message"] for e in events)
    assert events[-1]["status"] == "failed" and events[-1]["events"] == len(events)


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint_and_resume_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tuneterm.engine import checkpoint

    # Checkpoints per epoch: best.pt (when better), then last.pt. The 3rd write is in epoch 2
    # (best.pt or last.pt): epoch 1's last.pt must survive it.
    _, store, run_id, error = _run_failing(tmp_path, capsys, "enospc@ckpt3", epochs=3)
    assert error.startswith("disk full while writing ") and "resume" in error
    ckdir = store.checkpoint_dir(run_id)
    assert sorted(p.name for p in ckdir.iterdir()) == ["best.pt", "last.pt"]  # no temp file
    last = checkpoint.load(ckdir / "last.pt")
    assert last["epoch"] == 1  # the previous checkpoint, whole and loadable
    assert checkpoint.load(ckdir / "best.pt")["best"]["epoch"] >= 1
    code = main(["--runs-dir", str(store.root), "resume", run_id])
    assert code == 0, capsys.readouterr()
    info = store.info(run_id)
    assert info.status == "completed" and info.meta is not None and info.meta.resumes == 1
    resume = next(e for e in store.events(run_id) if e["kind"] == "resume")
    assert resume["from_checkpoint"] and resume["step"] == last["step"]
