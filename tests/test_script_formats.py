"""The recognisers of printed training output, on the real output of the projects they read
(tests/data/script_formats/: each file names its project, version and command): every progress
and eval line read under the right names at the right steps, every banner and setting read as
no metric; non-finite values kept, thousands separators read or skipped; one rule for the
metric that ranks a run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tuneterm.script.formats import REGISTRY, number, read_line
from tuneterm.script.metrics import MetricBook, from_mapping, parse_line, run_metric

DATA = Path(__file__).resolve().parent / "data" / "script_formats"


def lines(name: str) -> list[str]:
    head, _, body = (DATA / name).read_text(encoding="utf-8").partition("\n---\n")
    assert "# project:" in head and "# version:" in head and "# command:" in head
    return body.splitlines()


def readings(name: str) -> list[tuple[str, dict[str, float], int | None]]:
    """(recogniser, metrics, step) of each line that gives metrics."""
    out = []
    for line in lines(name):
        r = read_line(line)
        if r is not None and r.record is not None and r.record.metrics:
            out.append((r.source, r.record.metrics, r.record.step))
    return out


def no_metric(line: str) -> bool:
    return parse_line(line) is None


def test_every_recogniser_is_registered_once_with_a_name_and_a_project() -> None:
    names = [r.name for r in REGISTRY]
    assert len(names) == len(set(names)) and all(r.project for r in REGISTRY)
    assert names[-2:] == ["banner", "plain"]  # the catch-alls go last


def test_nanogpt_iter_and_eval_lines_and_no_setting_as_a_metric() -> None:
    got = readings("nanogpt.txt")
    assert [(step, m["loss"]) for _, m, step in got if "loss" in m] == [
        (0, 3.3529), (10, 3.3674), (20, 3.3515), (30, 3.3465), (40, 3.3358)
    ]  # fmt: skip
    evals = [(step, m["val_loss"], m["eval_train_loss"]) for _, m, step in got if "val_loss" in m]
    assert evals == [(0, 3.3459, 3.3458), (20, 3.3434, 3.3548), (40, 3.3331, 3.3385)]
    assert {s for s, _, _ in got} == {"nanogpt"}
    for line in lines("nanogpt.txt"):
        if line.startswith(("Overriding", "tokens per", "number of param", "num ", "found")):
            assert no_metric(line), line


def test_mnist_train_loss_by_samples_seen_and_test_set_loss_and_accuracy() -> None:
    got = readings("pytorch_examples_mnist.txt")
    train = [(step, m["loss"]) for _, m, step in got if "loss" in m]
    assert train[:2] == [(0, 2.305388), (320, 1.692699)] and train[4] == (1200, 0.905368)
    tests = [m for _, m, _ in got if "val_loss" in m]
    assert tests == [
        {"val_loss": 0.4506, "val_acc": 262 / 300},
        {"val_loss": 0.2027, "val_acc": 281 / 300},
    ]
    assert all("Loss" not in m for _, m, _ in got)  # one spelling


def test_timm_train_loss_and_one_eval_per_epoch_from_its_running_averages() -> None:
    got = readings("timm.txt")
    train = [(step, m["loss"], m["lr"]) for _, m, step in got if "loss" in m]
    assert train[0] == (0, 2.36, 0.0125) and train[-1] == (23, 2.14, 0.00625)
    evals = [m for _, m, _ in got if "val_loss" in m]
    assert evals == [
        {"val_loss": 2.257, "val_acc1": 18.0, "val_acc5": 61.0},
        {"val_loss": 2.064, "val_acc1": 40.0, "val_acc5": 79.0},
    ]
    for line in lines("timm.txt"):
        if "param count" in line or "Best metric" in line or line.strip().startswith('"'):
            assert no_metric(line), line
    assert no_metric("Created SGD (sgd) optimizer: lr: 0.0125, momentum: 0.9, weight_decay: 2e-05")
    assert no_metric("\tcrop_pct: 0.875")


def test_torchvision_metric_logger_lines_and_the_eval_summary() -> None:
    got = readings("torchvision.txt")
    train = [(step, m) for _, m, step in got if "loss" in m]
    assert train[1] == (10, {"lr": 0.1, "loss": 7.0263, "train_acc1": 0.0, "train_acc5": 0.0})
    evals = [m for _, m, _ in got if "loss" not in m]
    assert evals == [
        {"val_acc1": 19.044, "val_acc5": 41.684},
        {"val_ema_acc1": 19.512, "val_ema_acc5": 42.001},
        {"val_acc1": 19.044, "val_acc5": 41.684},
    ]
    assert no_metric(lines("torchvision.txt")[0])  # Namespace(..., lr=0.1, ...): the settings


def test_hf_trainer_dicts_train_eval_and_no_summary_no_epoch_curve() -> None:
    got = readings("hf_trainer.txt")
    assert got[0] == ("hf-trainer", {"loss": 0.7731, "grad_norm": 0.8436, "lr": 4e-05}, None)
    evals = [m for _, m, _ in got if "eval_loss" in m]
    assert evals == [
        {"eval_loss": 0.7465, "eval_accuracy": 0.4531},
        {"eval_loss": 0.7464, "eval_accuracy": 0.4531},
    ]
    assert not any("epoch" in m or "train_runtime" in m for _, m, _ in got)
    assert len(got) == 6  # 4 train dicts, 2 evaluations; the train() summary is not a step


def test_lightning_bars_postfix_without_v_num_and_no_summary_table() -> None:
    got = readings("lightning_tqdm.txt")
    assert got[0] == ("lightning-bar", {"train_loss": 0.565}, 10)
    assert got[1][1] == {"train_loss": 0.426, "val_loss": 0.546, "val_acc": 0.913}
    assert got[1][2] == 20
    rich = readings("lightning_rich.txt")
    assert [m for _, m, _ in rich] == [
        {"train_loss": 0.342},
        {"val_loss": 0.352},
        {"val_acc": 0.941},
    ]
    for name in ("lightning_tqdm.txt", "lightning_rich.txt"):
        for line in lines(name):
            if "params" in line or "FLOPs" in line or "mode:" in line or "available" in line:
                assert no_metric(line), line
    assert all("v_num" not in m for _, m, _ in got + rich)


def test_keras_lines_keep_train_and_val_apart() -> None:
    got = readings("keras.txt")
    assert [m for _, m, _ in got] == [
        {"loss": 0.6931, "train_accuracy": 0.5, "val_loss": 0.689, "val_accuracy": 0.5312},
        {"train_accuracy": 0.625, "loss": 0.6512, "val_accuracy": 0.6562, "val_loss": 0.6401},
    ]


def test_plain_pairs_non_finite_values_kept_and_thousands_read_or_skipped() -> None:
    got = readings("plain.txt")
    by_step = {step: m.get("loss") for _, m, step in got if step is not None and "loss" in m}
    assert by_step[3] == math.inf and by_step[4] == -math.inf and math.isnan(by_step[5])
    assert by_step[6] == math.inf and by_step[7] == 1234.5
    assert 8 not in by_step  # `1,2` is skipped, never read as 1.0
    assert [m for _, m, _ in got][:3] == [{"acc": 0.5}, {"val_f1": 0.25}, {"bar_metric": 0.3}]
    assert number("1,234,567.5") == 1234567.5 and number("1,2") is None and number("3.2s") is None


@pytest.mark.parametrize(
    "line",
    [
        "Overriding: n_layer = 2",
        "param count:4924027",
        "Model resnet10t created, param count:4927618",
        "tokens per iteration will be: 512",
        "Trainable params: 2.2 K",
        "number of parameters: 0.80M",
        "Total estimated model params size (MB): 0.003",
        "Using bfloat16 Automatic Mixed Precision (AMP)",
        "Namespace(lr=0.1, epochs=90)",
        "TrainingArguments(learning_rate=5e-05, num_train_epochs=3)",
        "  | Name | Type   | Params | Mode",
        "batch_size: 32",
        "seed=42",
    ],
)
def test_settings_and_banners_are_never_metrics(line: str) -> None:
    assert no_metric(line)


def test_one_rule_picks_accuracy_then_eval_loss_then_train_loss_never_junk() -> None:
    assert run_metric(["val_loss", "val_acc", "loss"]) == "val_acc"
    assert run_metric(["eval_loss", "eval_acc"]) == "eval_acc"
    assert run_metric(["grad_norm", "eval_loss", "eval_accuracy"]) == "eval_accuracy"
    assert run_metric(["val_loss", "eval_train_loss", "loss"]) == "val_loss"
    assert run_metric(["loss"]) == "loss"
    assert run_metric(["n_layer", "be", "count", "mine"]) == ""
    assert run_metric(["val_loss", "val_acc"], configured="val_loss") == "val_loss"
    assert run_metric(["val_acc"], declared="val_err") == "val_err"


def test_the_runs_best_follows_the_chosen_metric_and_skips_non_finite_values() -> None:
    book = MetricBook()
    book.see(["loss"])
    assert book.offer({"step": 1, "epoch": 0.0, "loss": 2.0})["metric"] == "loss"
    book.see(["val_loss", "val_acc"])
    book.offer({"step": 1, "epoch": 0.0, "val_loss": 0.8, "val_acc": 0.5})
    best = book.offer({"step": 2, "epoch": 1.0, "val_loss": float("inf"), "val_acc": 0.75})
    assert best["metric"] == "val_acc" and best["value"] == 0.75 and best["step"] == 2
    assert book.bests["val_loss"]["value"] == 0.8  # inf is no best
    assert book.spec()["best"] == "val_acc"


def test_an_epoch_passed_to_log_is_never_a_curve() -> None:
    rec = from_mapping({"loss": 0.5, "epoch": 1.5, "eval_runtime": 0.1}, step=3, epoch=1.5)
    assert rec is not None and rec.metrics == {"loss": 0.5} and rec.epoch == 1.5 and rec.step == 3


def run_parse(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuneterm", "parse", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_parse_shows_what_a_log_gives_as_json_and_checks_patterns(tmp_path: Path) -> None:
    proc = run_parse(str(DATA / "pytorch_examples_mnist.txt"), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["metric"] == "val_acc"
    assert out["records"][4]["metrics"] == {"val_loss": 0.4506, "val_acc": 262 / 300}
    assert out["records"][4]["format"] == "pytorch-examples"
    proc = run_parse("-", "--pattern", r"mine (?P<mine>\d+)", "--json", stdin="mine 7\nloss: 1\n")
    assert [r["metrics"] for r in json.loads(proc.stdout)["records"]] == [{"mine": 7.0}]
    bad = run_parse("-", "--pattern", "(unclosed", stdin="x\n")
    assert bad.returncode == 2 and "--pattern" in bad.stderr
    table = run_parse(str(DATA / "nanogpt.txt"))
    assert table.returncode == 0 and "val_loss" in table.stdout and "n_layer" not in table.stdout


@pytest.mark.parametrize(
    ("line", "step", "metrics"),
    [
        ("step 1: loss 2.0000", 1, {"loss": 2.0}),
        ("step 2 loss 1.5", 2, {"loss": 1.5}),
        ("iter 6: loss 0.8", 6, {"loss": 0.8}),
        ("Step 7/100 loss: 0.7", 7, {"loss": 0.7}),
        ("epoch 2 step 5: loss 0.9 acc 0.5", 5, {"loss": 0.9, "acc": 0.5}),
    ],
)
def test_a_hand_written_loop_s_step_and_metric_words_are_read(
    line: str, step: int, metrics: dict[str, float]
) -> None:
    """The lines a plain loop prints most: the step in words, a metric word and its number."""
    r = read_line(line)
    assert r is not None and r.record is not None and r.source == "plain"
    assert r.record.step == step and r.record.metrics == metrics


@pytest.mark.parametrize(
    "line", ["Epoch 3 took 12.5 seconds", "the loss went up by 3 percent after step 400 so we stop"]
)
def test_words_around_a_step_are_no_metric(line: str) -> None:
    assert no_metric(line)
