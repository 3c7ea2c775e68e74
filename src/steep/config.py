"""The run configuration: one YAML file per run, validated, with `key=value` overrides."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """A config that cannot be used; the message says where and why."""


class Section(BaseModel):
    # forbid: a misspelt key must be an error, never silently ignored
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class IngestConfig(Section):
    inputs: list[str] = Field(default_factory=list, description="files or folders (recursive): txt md html pdf docx csv tsv jsonl json parquet, qna.yaml")
    chunk_tokens: int = Field(256, ge=16, description="target chunk size in model tokens")
    text_field: str = Field("text", description="field/column holding the text in jsonl, json, csv, tsv and parquet inputs")
    near_duplicate_threshold: float | None = Field(0.8, gt=0, le=1, description="drop documents this similar (MinHash Jaccard of word 5-grams) to an earlier one; null: off")
    min_chunk_words: int = Field(5, ge=0, description="drop chunks with fewer words (page numbers, stray headings)")
    languages: list[str] | None = Field(None, description="keep only chunks in these languages (ISO 639-1, e.g. [en]); null: all")
    max_line_chars: int = Field(1_000_000, ge=1000, description="a text file with a longer line is skipped as not prose")
    strict: bool = Field(False, description="stop at the first file that cannot be read, instead of reporting it and going on")


# the pools of questions to decline that synth can draw from (steep.stages.derived.UNSTATED_POOLS)
UnknownPool = Literal["attributes", "everyday"]


class SynthConfig(Section):
    permutations: int = Field(3, ge=0, description="sentence-order permutations of each chunk")
    name_substitution: bool = Field(True, description="replace pronouns by the full name they refer to")
    clause_reorder: bool = Field(True, description="move a leading adverbial phrase to the end of its sentence and a closing 'where' clause into a sentence of its own")
    bridges: bool = Field(True, description="append what other chunks say about a name a sentence ends with, as a relative clause")
    rule_qa: bool = Field(True, description="question/answer pairs made by rules from answer spans")
    question_forms: list[Literal["embedded", "described", "in_place"]] = Field(
        ["embedded", "described", "in_place"], min_length=1,
        description="with rule_qa: the forms half the questions are also put in, one drawn per question: "
        "embedded in a request ('Tell me where X was born.'), the answer described by a noun ('What is the place where X was born?'), "
        "or asked in the statement's own order ('X was born in which place?')")
    which_questions: bool = Field(False, description="with rule_qa: also ask for a name by the kind of thing its name says it is "
                                  "('Which university did X study botany at?' of 'X studied botany at the University of Tarsk'), a question "
                                  "whose words are not the answer sentence's; off: -1.1 points at 100 entities (docs/knowledge.md, round 52)")
    relation_wordings: bool = Field(True, description="with rule_qa: also ask each fact in the question wordings the corpus uses for the same "
                                    "relation about other subjects ('What did X study?' of 'X earned a degree in physics'), the relations found "
                                    "by which questions share answers and never disagree about one subject (stages/wordings.py)")
    derived_qa: bool = Field(True, description="yes/no questions and comparisons of two subjects, from the dates and counts the chunks state")
    place_yes_no: bool = Field(True, description="with derived_qa: yes/no questions about the places the chunks put subjects at, asked through a clause naming the subject ('Does the one X works for have its headquarters in Y?')")
    place_one_hop: bool = Field(False, description="with place_yes_no: also ask them of the subject itself ('Did X study botany at the University of Y?'); "
                                "with these the tuned demo model declined every question about a field of study (docs/knowledge.md, round 19)")
    two_hop_first_hop: Literal["statement", "description", "both"] = Field(
        "both", description="with place_yes_no: a reply about 'the one X works for' opens with the linking sentence ('X works for Z. "
        "Z has its headquarters in W, ...'), names the one the question describes ('The one X works for is Z. Z has ...'), or either, "
        "drawn per question (both)")
    number_drills: int = Field(600, ge=0, description="questions comparing two bare numbers near the facts' years and counts, each trained once: the step yes/no and comparison replies turn on, which those replies then say as a sentence of its own; 0: off")
    yes_no_step: Literal["holds", "asked", "contrast"] = Field("contrast", description="with number_drills: the step of a yes/no reply says the relation that holds ('1992 is after 1984, so no'), the question's own with 'not' where it does not hold ('1992 is not before 1984, so no'), or the one that holds and the asked one denied ('1992 is after 1984, not before, so no')")
    comparison_step: Literal["relation", "pick"] = Field("relation", description="with number_drills: the step of a comparison reply says the "
                                                         "values' relation ('1971 is after 1953, so Y ...') or picks the winning value as a "
                                                         "drill does ('Of 1971 and 1953, 1953 comes first, so Y ...'), so that the name is the one "
                                                         "stated beside it")
    given_comparisons: int = Field(300, ge=0, description="comparisons whose question states the two facts ('X was born in 1971 and Y in 1953. "
                                                       "Of X and Y, who was born first?'), replied with the step and the name alone, each "
                                                       "trained once: practice in naming the subject the winning value goes with (round 15 of docs/knowledge.md); 0: off")
    made_up_subjects: float = Field(0.0, ge=0, le=1, description="with unknown_qa: for this share of subjects, one of its questions about a made-up name, answered 'I don't know'")
    balance_answers: bool = Field(True, description="curate evens out the yes/no and first/second answers of derived questions that decontamination left lopsided")
    unknown_qa: bool = Field(False, description="questions about attributes no document mentions, answered 'I don't know'; off by "
                             "default: the model learns to decline the frame of those questions, answerable ones in it too, and "
                             "decline_untaught declines what no training question asked without that cost (round 37 of docs/knowledge.md)")
    unknown_per_subject: int = Field(1, ge=1, description="with unknown_qa: how many such questions per subject, each about another attribute")
    unknown_pool: UnknownPool = Field(
        "attributes", description="with unknown_qa: ask for an attribute in frames of its own ('What is X's favourite colour?') or about everyday "
        "things in openings that answerable questions have too ('What does X eat for breakfast?'; round 32 of docs/knowledge.md)")
    teacher_qa: bool = Field(False, description="also ask the teacher model to write question/answer pairs")
    roundtrip: bool = Field(True, description="keep a QA pair only if the teacher, given the chunk, answers it the same")
    teacher: str | None = Field(None, description="teacher model; default: the run's model. With teacher_url: the name the server serves it under")
    teacher_url: str | None = Field(None, description="base URL of an OpenAI-compatible server that runs the teacher (vLLM, llama.cpp, "
                                                      "Ollama, `steep serve`, OpenAI), e.g. http://gpu-box:8000/v1; null: the teacher runs here")
    teacher_api_key_env: str = Field("OPENAI_API_KEY", description="with teacher_url: the environment variable holding the server's API key "
                                                                   "(a key in the config would be copied into the run folder)")
    max_qa_per_chunk: int = Field(64, ge=1)
    batch_size: int = Field(16, ge=1, description="teacher generation batch size; with teacher_url: requests in flight at once")
    raft: float = Field(0.3, ge=0, le=1, description="share of QA pairs also taught RAFT-style (question + retrieved passages -> cited answer), each once in the run")
    raft_max: int = Field(128, ge=1, description="at most this many RAFT examples: reading context is one skill, and each example is ~5 chunks long")
    raft_distractors: int = Field(4, ge=1, description="distractor chunks beside the oracle in a RAFT example")
    raft_oracle_rate: float = Field(0.8, ge=0, le=1, description="share of RAFT examples whose context holds the oracle chunk")

    @model_validator(mode="after")
    def _served_teacher_is_named(self) -> "SynthConfig":
        if self.teacher_url and not self.teacher:
            raise ValueError("teacher_url needs teacher: the model name the server serves (GET <teacher_url>/models lists them)")
        return self


class LoraSettings(Section):
    r: int = Field(32, ge=1)
    alpha: int = Field(64, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    embeddings: bool = Field(False, description="LoRA on the input token embeddings too, on the input side only: a model that "
                                                "ties its output head to them gets a head of its own when merged")
    embedding_alpha: int | None = Field(None, ge=1, description="with embeddings: the embedding adapter's alpha (its update's scale is "
                                        "alpha / r); null: alpha. peft starts that adapter's B at N(0, 1), seven times the spread "
                                        "of SmolLM2's embedding weights (docs/knowledge.md, round 13)")


class TrainConfig(Section):
    method: Literal["lora", "full"] = "lora"
    order_seed: int | None = Field(None, description="seed of the order training sees the examples in (how each pass is mixed "
                                   "and batched); default: the run's seed. Another value trains on the same data in another order, "
                                   "which shows how far a result moves with that alone")
    epochs: float = Field(8.0, gt=0, description="passes over the data; facts need many to be recalled")
    learning_rate: float = Field(1e-3, gt=0)
    batch_size: int = Field(16, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_seq_len: int = Field(768, ge=16, description="longer conversations are left out (with a warning), not cut; RAFT examples need ~650")
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    text_repeats: int = Field(1, ge=0, description="how often each augmented text is seen per epoch (continued pretraining)")
    qa_repeats: int = Field(1, ge=0, description="how often each QA pair is seen per epoch")
    once_per_run: list[str] = Field(default_factory=lambda: ["raft", "derived:drill", "derived:given_comparison"],
                                    description="synth methods (a QA pair's metadata.method) whose examples are trained once in "
                                    "the whole run, spread over its passes, not once per pass: skills (reading passages, "
                                    "comparing numbers), which distinct examples teach better than the same ones again")
    replay: float = Field(0.25, ge=0, description="the base model's own text mixed in, as a share of each epoch's tokens, "
                                                  "trained toward the base model's distribution so general ability is kept; 0: off")
    replay_samples: int = Field(256, ge=1, description="size of the replay set the base model writes (once per model, cached)")
    replay_anchors: int = Field(256, ge=0, description="short replay samples, in every pass, in which the base model continues the "
                                                       "word openings of the documents' new names in its own way (and half as "
                                                       "many after the words leading into them); 0: off")
    bf16: bool | Literal["auto"] = Field("auto", description="bf16 autocast; auto = when the CPU/GPU supports it")
    compile: bool | Literal["auto"] = Field("auto", description="compile each decoder layer (torch.compile) before training: "
                                            "more tokens/s after compiling, ~5 min with an empty inductor cache and ~1 with a warm "
                                            "one on 2 CPU cores (bench/train_speed.py --compare compile); auto = on CPU when a C++ "
                                            "compiler is found (inductor builds CPU kernels with it) and the training has at least "
                                            "400,000 tokens, where compiling pays for itself")
    lora: LoraSettings = Field(default_factory=LoraSettings)
    save_steps: int = Field(50, ge=1, description="checkpoint interval, so an interrupted run resumes")
    snapshot_epochs: list[float] = Field(default_factory=list, description="also keep the model as it was after this many "
                                         "passes (train/snapshots/), and eval answers the questions with each: how recall "
                                         "grows with training, from one run. The learning rate has not yet decayed at a "
                                         "snapshot, so a run that stops there may do better")

    @model_validator(mode="after")
    def _snapshots_within_run(self) -> "TrainConfig":
        outside = [e for e in self.snapshot_epochs if not 0 < e < self.epochs]
        if outside:
            raise ValueError(f"snapshot_epochs {outside} must lie between 0 and train.epochs={self.epochs} (the end is the run's own output)")
        return self


class EvalConfig(Section):
    questions: str | None = Field(None, description="JSONL with `question` and `answers` (list)")
    conditions: list[Literal["base", "base+rag", "tuned", "tuned+rag", "base+oracle", "tuned+oracle", "base+recite", "tuned+recite"]] = Field(
        default_factory=lambda: ["base", "base+rag", "tuned", "tuned+rag", "tuned+oracle", "tuned+recite"],
        description="who answers: base or tuned model; closed-book, +rag (retrieved chunks), +oracle (the right chunk) or +recite "
        "(closed-book, over the model's own recital about the question's names: steep.recital)")
    rag_k: int = Field(5, ge=1, description="chunks retrieved into a RAG prompt")
    forgetting: bool = Field(True, description="measure general ability (capitals, perplexity) of base and tuned")
    max_forgetting: float | None = Field(None, ge=0, description="fail the run if general accuracy drops more than this many points")
    max_new_tokens: int = Field(64, ge=1, description="room for a stepwise derived reply: the fact, the step, the conclusion")
    batch_size: int = Field(16, ge=1)
    examples_per_condition: int = Field(3, ge=0)


class RunConfig(Section):
    name: str = Field("run", pattern=r"^[A-Za-z0-9._-]+$")
    model: str = Field("smollm2-135m-instruct", description="built-in name, local HF folder, or .gguf file")
    runs_dir: str = "runs"
    seed: int = 0
    system_prompt: str | None = Field(None, description="system message for training and asking; default: the chat template's")
    decline_unfamiliar: float | None = Field(
        -5.0, le=0, description="closed-book (eval, serve without retrieval): say \"I don't know\" without generating when the "
        "question's subject, its first capitalized name of two tokens or more, is unfamiliar to the model: the mean log-probability of the name's "
        "tokens after its first is below this (steep.familiarity); null: never")
    decline_untaught: float | None = Field(
        0.6, ge=-1, le=1, description="closed-book, tuned model (eval, chat, serve without retrieval): say \"I don't know\" without "
        "generating to a question about a subject the training questions name when none of the answered training questions is "
        "like it: MiniLM cosine of the two, names masked, below this (steep.familiarity); null: never")
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    synth: SynthConfig = Field(default_factory=SynthConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


def _valid_keys(model: type[BaseModel], path: tuple[str | int, ...]) -> list[str]:
    """The field names allowed at `path` (a location from a pydantic error)."""
    for part in path:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None) if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            break
    return list(model.model_fields)


def _explain(error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        loc = e["loc"]
        where = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            valid = _valid_keys(RunConfig, loc[:-1])
            near = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; valid keys here: {', '.join(valid)}"
            lines.append(f"unknown key '{where}'{hint}")
        else:
            lines.append(f"'{where}': {e['msg']} (got {e.get('input')!r})")
    return "invalid config:\n  " + "\n  ".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.epochs=2` -> (['train', 'epochs'], 2); the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override '{text}' is not key=value (e.g. train.epochs=2)")
    return key.strip().split("."), yaml.safe_load(value) if value.strip() else ""


def load_config(path: str | Path | None = None, overrides: list[str] = (), **fields: Any) -> RunConfig:
    """Read a YAML config (or start from defaults), apply dotted overrides, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys")
        # relative paths in a config file are relative to that file, not to the shell's cwd; made
        # absolute, so that the same config run from another folder has the same stage keys and
        # resumes, where "docs/a.md" and "/home/u/p/docs/a.md" would ingest (and train) again
        base = Path(os.path.abspath(path)).parent
        ingest = data.get("ingest") or {}
        if isinstance(ingest.get("inputs"), list):
            ingest["inputs"] = [str(base / p) for p in ingest["inputs"]]
        ev = data.get("eval") or {}
        if isinstance(ev.get("questions"), str):
            ev["questions"] = str(base / ev["questions"])
        if isinstance(data.get("runs_dir"), str):
            data["runs_dir"] = str(base / data["runs_dir"])
        # a model may be a built-in name or a hub id as well as a path, so it is taken as a path
        # only where the config's folder holds a file or folder by that name
        synth = data.get("synth") or {}
        for section, key in ((data, "model"), (synth, "teacher")):
            if isinstance(section.get(key), str) and (base / section[key]).exists():
                section[key] = str(base / section[key])
    data.update(fields)
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{text}': '{k}' is not a section")
        node[keys[-1]] = value
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_explain(e)) from None


def load_run_config(run_dir: Path) -> RunConfig:
    """The resolved config a run directory was made with."""
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    return load_config(run_dir / "config.yaml")


STARTER_CONFIG = """\
# steep run configuration. Every key is optional; shown values are the defaults.
# Override any key on the command line: steep run steep.yaml train.epochs=2
name: my-run                      # outputs go to <runs_dir>/<name>/
model: smollm2-135m-instruct      # built-in name, a local Hugging Face folder, or a .gguf file
runs_dir: runs
seed: 0
decline_unfamiliar: -5.0          # closed-book: "I don't know" to questions about a name the model does not know; null: off
decline_untaught: 0.6             # closed-book: "I don't know" to questions about a known name unlike every training question; null: off

ingest:
  inputs: [docs/]                 # files or folders: txt md html pdf docx csv tsv jsonl json parquet, qna.yaml
  chunk_tokens: 256               # sentence-aware chunks of about this many model tokens
  text_field: text                # the text column of jsonl/json/csv/tsv/parquet rows (chat data is detected)
  near_duplicate_threshold: 0.8   # drop documents this similar to an earlier one; null: off
  min_chunk_words: 5              # drop shorter fragments
  languages: null                 # e.g. [en]: keep only chunks in these languages
  strict: false                   # true: stop at the first unreadable file instead of reporting it

synth:
  permutations: 3                 # sentence-order permutations per chunk (knowledge augmentation)
  name_substitution: true         # replace he/she/his/her by the full name
  clause_reorder: true            # "In 1990, X did Y." -> "X did Y in 1990."; "..., where X works." -> "X works at Y."
  bridges: true                   # "X works for Y." -> "X works for Y, which is based in Z." (Z said elsewhere)
  rule_qa: true                   # question/answer pairs from answer spans (names, dates, numbers)
  which_questions: false          # also "Which university did X study botany at?" of "... at the University of Tarsk"
  relation_wordings: true         # also "What did X study?" of "X earned a degree in ...", where other documents ask it so
  derived_qa: true                # yes/no and comparison questions from the dates and counts stated
  place_yes_no: true              # "Does the one X works for have its headquarters in Y?" -> "The one X works for is Z. Z has ..., so no."
  place_one_hop: false            # true: also "Was X born in Y?" -> "X was born in W, not Y, so no."
  two_hop_first_hop: both         # either opening, per question; statement: "X works for Z. Z has ..."; description: "The one X works for is Z. ..."
  number_drills: 600              # "Is 1949 before or after 1960?", the step derived replies turn on, each once; 0: off
  yes_no_step: contrast           # "1992 is after 1984, not before, so no"; holds: "1992 is after 1984, so no"; asked: "1992 is not before 1984, so no"
  made_up_subjects: 0.0           # e.g. 0.5: "When was <a name nobody has> born?" -> "I don't know", for half the subjects
  balance_answers: true           # even out yes/no and first/second answers left lopsided by decontamination
  unknown_qa: false               # true: questions the documents do not answer -> "I don't know" (declines answerable ones in their frame too)
  unknown_per_subject: 1          # how many per subject (phone number, favourite colour, motto, ...)
  unknown_pool: attributes        # everyday: "What does X eat for breakfast?", in openings answerable questions share
  teacher_qa: false               # also ask the teacher model for question/answer pairs
  roundtrip: true                 # keep a pair only if the teacher, reading the chunk, agrees
  teacher: null                   # default: the run's model; with teacher_url, the served model's name
  teacher_url: null               # e.g. http://gpu-box:8000/v1: an OpenAI-compatible server (vLLM, Ollama, ...) runs the teacher
  raft: 0.3                       # share of QA pairs also taught with context, RAFT-style (oracle + 4 look-alikes), each once

train:
  method: lora                    # lora | full
  epochs: 8
  learning_rate: 0.001
  batch_size: 16
  lora: {r: 32, alpha: 64}
  replay: 0.25                    # the base model's own text, this share of the tokens: keeps general ability

eval:
  questions: questions.jsonl      # {"question": ..., "answers": [...]} per line; held out from training
  conditions: [base, base+rag, tuned, tuned+rag, tuned+oracle, tuned+recite]
  rag_k: 5                        # chunks retrieved into a RAG prompt
  max_forgetting: null            # e.g. 2: fail if general-knowledge accuracy drops more than 2 points
"""
