from pathlib import Path

import pytest
import yaml

from steep.config import STARTER_CONFIG, ConfigError, RunConfig, load_config


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_itself_and_nearest_valid_key(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "train:\n  epocs: 2\n"))
    assert "train.epocs" in str(e.value) and "did you mean 'epochs'" in str(e.value)


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'modle'.*'model'"):
        load_config(write(tmp_path, "modle: x\n"))


def test_wrong_type_says_what_was_expected(tmp_path):
    with pytest.raises(ConfigError, match=r"train.batch_size.*integer"):
        load_config(write(tmp_path, "train: {batch_size: many}\n"))


def test_overrides_are_typed_and_validated(tmp_path):
    cfg = load_config(write(tmp_path, "name: a\n"), ["train.epochs=2.5", "synth.rule_qa=false", "train.lora.r=4"])
    assert cfg.train.epochs == 2.5 and cfg.synth.rule_qa is False and cfg.train.lora.r == 4
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        load_config(None, ["train.learning_rat=0.1"])
    with pytest.raises(ConfigError, match="not key=value"):
        load_config(None, ["train.epochs"])


def test_paths_are_relative_to_the_config_file_and_made_absolute(tmp_path, monkeypatch):
    path = write(tmp_path, "ingest: {inputs: [docs]}\neval: {questions: q.jsonl}\nruns_dir: runs\n")
    cfg = load_config(path)
    assert cfg.ingest.inputs == [str(tmp_path / "docs")] and cfg.eval.questions == str(tmp_path / "q.jsonl")
    # named relative to another folder: the same absolute paths, so the run's stage keys are the same
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_config(Path("..") / path.name).model_dump() == cfg.model_dump()


def test_a_model_path_is_relative_to_the_config_file_and_a_name_stays_a_name(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.gguf").write_bytes(b"")
    path = write(tmp_path, "model: models/mine.gguf\nsynth: {teacher: models/mine.gguf}\n")
    monkeypatch.chdir(tmp_path / "models")
    cfg = load_config(path)
    assert cfg.model == cfg.synth.teacher == str(tmp_path / "models" / "mine.gguf")
    # built-in names and hub ids name nothing in the config's folder, so they are kept as written
    cfg = load_config(write(tmp_path, "model: smollm2-135m-instruct\nsynth: {teacher: HuggingFaceTB/SmolLM2-360M}\n"))
    assert (cfg.model, cfg.synth.teacher) == ("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-360M")


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [\n"))


def test_starter_config_is_valid_and_states_the_real_defaults():
    data = yaml.safe_load(STARTER_CONFIG)
    cfg = RunConfig.model_validate(data)
    defaults = RunConfig()
    for section in ("synth", "train"):
        for key, value in data[section].items():
            if key != "lora":
                assert getattr(getattr(defaults, section), key) == value, f"{section}.{key}"
    assert cfg.model == defaults.model
