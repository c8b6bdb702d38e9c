"""The one rule for which way a metric is better: its words, the tie rule, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsml_hpc.config.settings import load_settings, metric_directions
from nsml_hpc.errors import ConfigError
from nsml_hpc.job.direction import (
    DOCUMENT_KEY,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    NO_OVERRIDES,
    Directions,
    split_goal,
    words,
)
from nsml_hpc.job.snapshot_format import parse_selector
from nsml_hpc.snapshots.retention import policies_from

goal = NO_OVERRIDES.goal


def test_the_two_word_lists_do_not_overlap() -> None:
    assert not LOWER_IS_BETTER & HIGHER_IS_BETTER


@pytest.mark.parametrize("word", sorted(LOWER_IS_BETTER))
def test_every_lower_is_better_word_is_min_alone_and_in_a_name(word: str) -> None:
    assert goal(word) == "min"
    assert goal(f"val_{word}") == "min"
    assert goal(f"train/{word}") == "min"
    assert goal(word.upper()) == "min"


@pytest.mark.parametrize("word", sorted(HIGHER_IS_BETTER))
def test_every_higher_is_better_word_is_max_alone_and_in_a_name(word: str) -> None:
    assert goal(word) == "max"
    assert goal(f"val_{word}") == "max"
    assert goal(f"test/{word}") == "max"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # the names the issue named
        ("fid", "min"),
        ("val/fid", "min"),
        ("train_loss", "min"),
        ("lossy_acc", "max"),  # "lossy" is not the word "loss"
        # separators, case and humps
        ("test-error", "min"),
        ("eval.perplexity", "min"),
        ("valLoss", "min"),
        ("ValAcc", "max"),
        ("MSELoss", "min"),
        ("top1Err", "min"),
        ("F1Score", "max"),
        ("mAP", "max"),  # one capital run stays one word
        ("mAP@0.5", "max"),
        ("val_mIoU", "max"),
        # glued split prefixes and trailing digits
        ("valloss", "min"),
        ("trainMSE", "min"),
        ("testacc", "max"),
        ("bleu4", "max"),
        ("map50", "max"),
        ("rouge1", "max"),
        ("rougeL", "max"),
        ("wer2", "min"),
        # words, never substrings
        ("answer_acc", "max"),  # no "wer" in it
        ("glossary_size", "max"),  # no "loss" in it
        ("confidence", "max"),
        ("terrain_score", "max"),  # no "err" in it
        ("timestamp", "max"),  # no "time" in it
        # the tie rule: a lower-is-better word wins
        ("fid_score", "min"),
        ("iou_loss", "min"),
        ("dice_loss", "min"),
        ("acc_error", "min"),
        ("time_to_acc", "min"),
        ("bleu_cost", "min"),
        # a leading negation flips what the words say (scikit-learn's scores)
        ("neg_mean_squared_error", "max"),
        ("neg_log_loss", "max"),
        ("negative_log_likelihood", "min"),
        ("log_likelihood", "max"),
        ("false_negative_rate", "max"),  # only a LEADING neg flips; no known word here
        # nothing known: maximised
        ("throughput", "max"),
        ("samples_per_sec", "max"),
        ("lr", "max"),
        ("", "max"),
        ("___", "max"),
    ],
)
def test_names(name: str, expected: str) -> None:
    assert goal(name) == expected


def test_words_of_a_name() -> None:
    assert words("val/MSELoss_top1") == ("val", "mse", "loss", "top1")
    assert words("mAP@0.5") == ("map", "0", "5")


def test_an_exact_name_override_wins_over_the_words() -> None:
    directions = Directions.of({"val/fid": "max", "answer": "min"})
    assert directions.goal("val/fid") == "max"
    assert directions.goal("test/fid") == "min"  # only that exact name
    assert directions.goal("answer") == "min"


def test_an_override_of_a_word_applies_to_every_name_with_that_word() -> None:
    directions = Directions.of({"fid": "max", "score": "min"})
    assert directions.goal("fid") == "max"
    assert directions.goal("val/fid") == "max"
    assert directions.goal("FID_ema") == "max"
    assert directions.goal("bleu_score") == "min"  # the user's words before the built-in ones
    assert directions.goal("val_loss") == "min"  # untouched words keep the rule


def test_directions_are_hashable_and_round_trip_through_a_session_document() -> None:
    directions = Directions.of({"fid": "max", "b": "min"})
    assert hash(directions) == hash(Directions.of({"b": "min", "fid": "max"}))
    document = directions.to_document()
    assert document == {DOCUMENT_KEY: {"b": "min", "fid": "max"}}
    assert Directions.from_document(document) == directions
    assert NO_OVERRIDES.to_document() == {}
    assert Directions.from_document({}) == NO_OVERRIDES
    assert Directions.from_document({DOCUMENT_KEY: ["x"]}) == NO_OVERRIDES
    mangled = {DOCUMENT_KEY: {"fid": "max", "x": "down", "y": 3}}
    assert Directions.from_document(mangled).as_dict() == {"fid": "max"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("val_acc:max", ("val_acc", "max")),
        ("val_loss:min", ("val_loss", "min")),
        ("val_acc", ("val_acc", None)),
        ("a:b", ("a:b", None)),
        (":max", (":max", None)),
        ("ns:val:max", ("ns:val", "max")),
    ],
)
def test_split_goal(text: str, expected: tuple[str, str | None]) -> None:
    assert split_goal(text) == expected


@pytest.mark.parametrize(
    ("name", "maximize"),
    [("fid", False), ("val/fid", False), ("f1", True), ("answer_acc", True), ("valLoss", False)],
)
def test_the_snapshot_selector_follows_the_rule(name: str, maximize: bool) -> None:
    assert parse_selector(f"best:{name}").maximize is maximize
    assert parse_selector(f"best:{name}:max").maximize is True
    assert parse_selector(f"best:{name}:min").maximize is False


def test_the_snapshot_selector_follows_the_overrides() -> None:
    directions = Directions.of({"fid": "max"})
    assert parse_selector("best:val/fid", directions).maximize is True
    assert parse_selector("best:val/fid:min", directions).maximize is False


# --- [metrics] in the config ------------------------------------------------------------------


def test_the_metrics_table_of_the_config_becomes_the_settings_directions(nsml_env: Path) -> None:
    (nsml_env / "config.toml").write_text('[metrics]\nfid = "max"\n"val.score" = "min"\n')
    directions = load_settings().metric_directions
    assert directions.as_dict() == {"fid": "max", "val.score": "min"}
    assert directions.goal("val/fid") == "max"
    assert load_settings().metric_directions == directions


def test_without_a_metrics_table_nothing_is_overridden(nsml_env: Path) -> None:
    assert load_settings().metric_directions == NO_OVERRIDES


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"metrics": {"fid": "down"}}, '[metrics] fid: the direction must be "min" or "max"'),
        ({"metrics": {"fid": "MIN"}}, "got 'MIN'"),
        ({"metrics": {"fid": 1}}, "got 1"),
        ({"metrics": {"val": {"fid": "min"}}}, 'quote a name with dots: "val.fid"'),
        ({"metrics": {" ": "min"}}, "a metric name must not be empty"),
        ({"metrics": "fid=min"}, "[metrics] must be a table"),
    ],
)
def test_a_bad_metrics_table_is_one_config_error(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        metric_directions(table)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_bad_direction_in_the_config_file_stops_loading_the_settings(nsml_env: Path) -> None:
    (nsml_env / "config.toml").write_text('[metrics]\nfid = "lower"\n')
    with pytest.raises(ConfigError, match=r"\[metrics\] fid"):
        load_settings()


def test_gc_keep_best_follows_the_rule_and_the_metrics_table() -> None:
    gc = {"keep_best": 1, "best_metric": "val/fid"}
    assert policies_from({"gc": gc}).default.maximize is False
    assert policies_from({"gc": gc, "metrics": {"fid": "max"}}).default.maximize is True
    explicit = {"gc": {**gc, "best_metric": "val/fid:min"}, "metrics": {"fid": "max"}}
    assert policies_from(explicit).default.maximize is False
    with pytest.raises(ConfigError, match=r"\[metrics\] fid"):
        policies_from({"gc": gc, "metrics": {"fid": "up"}})


def test_a_submitted_session_carries_the_overrides_into_its_job(tmp_path: Path) -> None:
    from nsml_hpc.backends.files import LocalFiles
    from nsml_hpc.config.settings import Settings
    from nsml_hpc.job.api import SessionInfo
    from nsml_hpc.job.spec import SessionSpec
    from nsml_hpc.submit.create import build_run_dir, prepare

    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("print(1)\n")
    directions = Directions.of({"fid": "max"})
    settings = Settings(
        catalog_url="sqlite://", run_root=tmp_path / "runs", metric_directions=directions
    )
    prepared = prepare(SessionSpec(project="gan", script="train.py"), settings, code)
    final = str(tmp_path / "runs" / "alice" / "gan" / "1")
    (tmp_path / "runs" / "alice" / "gan").mkdir(parents=True)
    build_run_dir(prepared, LocalFiles(), "gan/1", 1, final, "alice", 0.0)
    assert SessionInfo(Path(final)).metric_directions == directions
    plain = prepare(
        SessionSpec(project="gan", script="train.py"), Settings("sqlite://", tmp_path), code
    )
    assert DOCUMENT_KEY not in plain.extra
