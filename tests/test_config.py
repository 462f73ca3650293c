"""Typed configs: recipes load, overrides apply, and every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hourglass.config import Config, load_config
from hourglass.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "hourglass" / "recipes"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_loads(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.data.heatmap_size[0] * 4 == cfg.data.input_size[0]


def test_recipes_exist() -> None:
    names = {p.name for p in CONFIGS.glob("*.yaml")}
    assert {"synthetic-hg1.yaml", "mpii-hg2.yaml", "mpii-hg8.yaml", "coco-hg2.yaml"} <= names


def test_overrides_are_parsed_as_yaml_and_typed(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("model: {name: hg1}\noptim: {lr: 2.5e-4}\n")
    cfg = load_config(f, ["optim.lr=1e-3", "data.input_size=[128, 96]", "train.amp=none", "model.kwargs.depth=2"])
    assert cfg.optim.lr == 1e-3 and isinstance(cfg.optim.lr, float)
    assert cfg.data.input_size == (128, 96)
    assert cfg.train.amp == "none"
    assert cfg.model.kwargs == {"depth": 2}
    assert cfg.model.name == "hg1"
    assert cfg.to_dict()["data"]["input_size"] == [128, 96]


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("optim: {lrr: 0.1}\n", [], r"unknown key 'optim\.lrr'; did you mean 'optim\.lr'"),
        ("", ["train.batch_size=abc"], r"train\.batch_size must be an integer, got str 'abc'"),
        ("", ["train.batch_size=2.5"], r"train\.batch_size must be an integer"),
        ("", ["optim.lr=fast"], r"optim\.lr must be a number"),
        ("", ["optim.name=lbfgs"], r"optim\.name must be one of 'rmsprop', 'adam'"),
        ("", ["data.input_size=[256]"], r"data\.input_size must be a list of 2 values"),
        ("", ["train.channels_last=1"], r"train\.channels_last must be true or false"),
        ("", ["optim.lr=-1"], r"optim\.lr must be > 0"),
        ("", ["train.batch_size=0"], r"train\.batch_size must be >= 1"),
        ("", ["data.augment.scale=[1.2, 0.8]"], r"data\.augment\.scale must be"),
        ("", ["optim=3"], r"optim must be a mapping"),
        ("", ["optim.lr.x=3"], r"optim\.lr must be a number, got dict"),
        ("optim: {lr: 0.1}\n", ["optim.lr.x=3"], r"optim\.lr is not a section"),
        ("", ["nonsense"], r"expected key=value"),
        ("data: [1, 2]\n", [], r"data must be a mapping"),
        ("- 1\n", [], r"expected a mapping of sections"),
        ("a: [\n", [], r"not valid YAML"),
        ("", ["train.device=tpu"], r"train\.device must be"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, overrides: list[str], message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(f, overrides)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read config"):
        load_config(tmp_path / "nope.yaml")
