"""The knowledge benchmark: write a generated world's documents and probes, run the pipeline in
several variants on them, and tabulate accuracy per probe kind with tokens trained and wall time.

Each variant is an ordinary run (runs/<variant>/ under the bench folder) with a few config
overrides, so a variant that finished is skipped on a rerun and any one can be opened with
`steep report` or `steep chat --run`."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from .. import pipeline
from ..config import RunConfig, load_config
from ..models import bf16_supported
from ..rundir import read_jsonl, write_json, write_jsonl, write_text
from ..stages.evaluate import paired_difference
from .corpus import documents, make_world
from .probes import KINDS, probes

log = logging.getLogger("steep")

# variant -> (what it shows, config overrides). The ablations switch off parts of steep's synth:
# augmented text (sentence orders, clause orders, full names, bridges), QA pairs from single
# sentences, and derived QA (yes/no, comparisons, "I don't know").
NO_AUGMENTATION = ["synth.permutations=0", "synth.name_substitution=false", "synth.clause_reorder=false", "synth.bridges=false"]
NO_DERIVED = ["synth.derived_qa=false", "synth.unknown_qa=false", "synth.number_drills=0"]
NO_QA = ["synth.rule_qa=false", "synth.roundtrip=false"] + NO_DERIVED
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "base": ("the base model, untrained", ["eval.conditions=[base]"]),
    "defaults": ("steep's defaults", []),
    "no-augmentation": ("continued pretraining on the documents as written", NO_AUGMENTATION + NO_QA),
    "augmentation-only": ("augmented text, no QA pairs", NO_QA),
    "qa-only": ("all QA pairs, no text", ["train.text_repeats=0"]),
    "augmentation-and-qa": ("augmented text and single-sentence QA pairs, no derived QA", NO_DERIVED),
    "previous-defaults": ("steep before this benchmark: no bridges, no derived QA", NO_DERIVED + ["synth.bridges=false"]),
    "full": ("steep's defaults, full fine-tuning instead of LoRA", ["train.method=full", "train.learning_rate=5e-5"]),
    "no-drills": ("the defaults without number drills, stepwise derived replies and balanced answers (the defaults before round 6)",
                  ["synth.number_drills=0", "synth.balance_answers=false", "eval.max_new_tokens=48"]),
    "asked-step": ("the defaults with yes/no steps in the question's own relation ('1992 is not before 1984, so no')",
                   ["synth.yes_no_step=asked"]),
    "made-up-subjects": ("the defaults with questions about made-up names for half the subjects (rounds 3 and 4)",
                         ["synth.unknown_qa=true", "synth.made_up_subjects=0.5"]),
    "round-7": ("the defaults with yes/no questions about places ('Does the one X works for have its headquarters in Y?'), "
                "contrast steps ('1992 is after 1984, not before, so no') and three 'I don't know' questions per subject",
                ["synth.place_yes_no=true", "synth.place_one_hop=true", "synth.two_hop_first_hop=statement", "synth.yes_no_step=contrast",
                 "synth.unknown_qa=true", "synth.unknown_per_subject=3"]),
    "embedding-lora": ("the defaults with LoRA on the input token embeddings too (Physics of LMs 3.1: the embedding layer's "
                       "rank mattered more than attention's)", ["train.lora.embeddings=true"]),
    "embedding-lora-alpha-4": ("embedding-lora with the embedding adapter's update scaled 16 times smaller (alpha 4 against 64), "
                               "which kept general ability as the defaults keep it (round 13)",
                               ["train.lora.embeddings=true", "train.lora.embedding_alpha=4"]),
    "picked-comparisons": ("the defaults with comparison steps that pick the winning value as a drill does ('Of 1971 and 1953, "
                           "1953 comes first, so ...'), instead of saying the values' relation", ["synth.comparison_step=pick"]),
    "no-given-comparisons": ("the defaults without the comparisons whose question states the two facts (the defaults before "
                             "round 15)", ["synth.given_comparisons=0"]),
    "places": ("the defaults with two-hop place replies that open with the linking sentence ('X works for Z. Z has its "
               "headquarters in W, not Y, so no.'), as place questions were in rounds 8 and 16",
               ["synth.place_yes_no=true", "synth.place_one_hop=true", "synth.two_hop_first_hop=statement"]),
    "defaults-order-1": ("the defaults trained on the same data in another order (train.order_seed=1): how far a result "
                         "moves with the order alone", ["train.order_seed=1"]),
    "no-places": ("the defaults without yes/no questions about places (the defaults before round 18)", ["synth.place_yes_no=false"]),
    "permutations-6": ("the defaults with 6 sentence orders of each chunk instead of 3 (Physics of LMs 3.1: with full names, "
                       "5 orders made 70% of held-out questions answerable, against 49% with one)", ["synth.permutations=6"]),
    "places-one-hop": ("the defaults with place questions also asked of the subject itself ('Was X born in Y?'), as in round 18",
                       ["synth.place_one_hop=true"]),
    "unknown-qa": ("the defaults with a question per subject about an attribute no document gives, answered 'I don't know' "
                   "(the defaults before round 37)", ["synth.unknown_qa=true"]),
    "no-relation-wordings": ("the defaults without each fact also asked in the wordings other subjects' documents give its "
                             "relation ('What did X study?' of 'X earned a degree in physics'; the defaults before round 44)",
                             ["synth.relation_wordings=false"]),
    "described-first-hop": ("the defaults with every two-hop yes/no reply opening by naming the one the question describes "
                            "('The one X works for is Z.'), none with the linking sentence ('X works for Z.'; the defaults "
                            "before round 44)", ["synth.two_hop_first_hop=description"]),
    "requests-only": ("the defaults with questions also put only as requests ('Tell me where X was born.'), none as a "
                      "described answer ('What is the place where X was born?') or in the statement's order ('X was born in "
                      "which place?'; the defaults before round 49)", ["synth.question_forms=[embedded]"]),
    "which-questions": ("the defaults with a name also asked for by the kind its name says it is ('Which university "
                        "did X study botany at?'; measured in round 52, not default)", ["synth.which_questions=true"]),
}
DEFAULT_VARIANTS = ["base", "defaults", "no-augmentation", "augmentation-only", "qa-only", "augmentation-and-qa", "full"]
TARGETS = {"direct": 0.95, "rephrased": 0.90, "yesno": 0.75, "comparison": 0.65, "unknown": 0.50}
STAGES = ("ingest", "synth", "curate", "train", "eval")


def write_corpus(folder: Path, entities: int, seed: int, probed_share: float) -> tuple[Path, int]:
    """docs/*.md and probes.jsonl under `folder`; returns the probes path and the document count."""
    world = make_world(entities, seed)
    docs = documents(world, seed)
    for name, text in docs:
        write_text(folder / "docs" / name, text)
    path = folder / "probes.jsonl"
    write_jsonl(path, probes(world, seed, probed_share))
    write_json(folder / "world.json", {"people": world.people, "organizations": world.organizations})
    return path, len(docs)


# a tuned variant is also scored reciting before it answers (steep.recital), in the same run: its
# "+recite" row shares the run's tokens and minutes, which include answering both ways
RECITING = "tuned+recite"


def variant_config(folder: Path, variant: str, model: str, seed: int, overrides: list[str]) -> RunConfig:
    """The variant's run config, also written as `<variant>.yaml` beside the documents (its run is `runs/<variant>`)."""
    config = {"name": variant, "model": model, "seed": seed, "runs_dir": "runs", "ingest": {"inputs": ["docs"]},
              "eval": {"questions": "probes.jsonl", "conditions": [condition(variant)] + ([RECITING] if condition(variant) == "tuned" else []),
                       "forgetting": False}}
    path = folder / f"{variant}.yaml"
    write_text(path, yaml.safe_dump(config, sort_keys=False))
    return load_config(path, VARIANTS[variant][1] + overrides)


def condition(variant: str) -> str:
    """The eval condition a variant is scored in: the base variant answers untrained, the others tuned."""
    return "base" if variant == "base" else "tuned"


def run_variant(folder: Path, variant: str, model: str, seed: int, overrides: list[str]) -> list[dict]:
    """One variant, resumed if it ran before: its scores per probe kind, tokens trained and the
    seconds its stages took (summed from their records: a stage done before keeps its time, and an
    interrupted training counts its earlier sessions up to their last checkpoint). Then a row for
    each snapshot (train.snapshot_epochs), timed as a run that had stopped training there."""
    tuned = condition(variant) == "tuned"
    cfg = variant_config(folder, variant, model, seed, overrides)
    results = pipeline.run(cfg)
    run = cfg.run_dir
    seconds = {s: json.loads((run / s / "done.json").read_text()).get("seconds", 0) for s in STAGES if (run / s / "done.json").exists()}
    train = json.loads((run / "train" / "done.json").read_text())["summary"] if tuned else {}
    curated = json.loads((run / "curate" / "done.json").read_text())["summary"] if tuned else {}
    curve = results.get("learning_curve", [])
    common = {"about": VARIANTS[variant][0], "overrides": VARIANTS[variant][1] + overrides,
              "qa_trained": curated.get("qa", 0), "removed_as_close_to_a_probe": curated.get("removed_leaking_eval", 0)}
    total = {"tokens_trained": train.get("tokens_trained", 0), "seconds": round(sum(seconds.values()) - sum(p["eval_seconds"] for p in curve), 1)}
    finals = [{"variant": name, **common, **_scores(results["conditions"][scored]), **total}
              for name, scored in ((variant, condition(variant)), (f"{variant}+recite", RECITING)) if scored in results["conditions"]]
    before_train = sum(t for s, t in seconds.items() if s in ("ingest", "synth", "curate"))
    return [{"variant": f"{variant} after {p['epochs']:g} passes", **common, **_scores(p), "tokens_trained": p["tokens_trained"],
             "seconds": round(before_train + p["train_seconds"] + p["eval_seconds"], 1)} for p in curve] + finals


def _scores(condition: dict) -> dict:
    return {"by_kind": {k: condition["by_kind"].get(k) for k in KINDS}, "overall": {m: condition[m] for m in ("contained", "exact_match", "f1")},
            "contained_ci": condition["contained_ci"], "declined": condition.get("declined"),
            "declined_unasked": condition.get("declined_unasked"), "n": condition["n"]}


def table(rows: list[dict]) -> str:
    """Markdown: answer-contained per probe kind (the headline), training data and time; then
    exact match and token F1 for the two kinds where they differ from it."""
    lines = ["| variant | " + " | ".join(KINDS) + " | all | declines answerable | declined unasked | QA trained (removed) | tokens trained "
             "| minutes |", "|---|" + "---:|" * (len(KINDS) + 6)]
    for r in rows:
        cells = [f"{r['by_kind'][k]['contained']:.1%}" if r["by_kind"][k] else "-" for k in KINDS]
        declined = f"{r['declined']:.1%}" if r["declined"] is not None else "-"
        unasked = r["declined_unasked"]  # None: an eval from before the count
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + f" | {r['overall']['contained']:.1%} | {declined} | "
                     f"{'-' if unasked is None else unasked} | {r['qa_trained']:,} ({r['removed_as_close_to_a_probe']:,}) | "
                     f"{r['tokens_trained']:,} | {r['seconds'] / 60:.1f} |")
    lines += ["", "| variant | direct EM | direct F1 | rephrased EM | rephrased F1 |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        d, p = r["by_kind"]["direct"], r["by_kind"]["rephrased"]
        lines.append(f"| {r['variant']} | {d['exact_match']:.1%} | {d['f1']:.1%} | {p['exact_match']:.1%} | {p['f1']:.1%} |")
    return "\n".join(lines)


def paired(folder: Path, variants: list[str]) -> list[dict]:
    """Each variant against the defaults (or the first variant when the defaults did not run),
    probe by probe: the mean difference in answer-contained with its bootstrap interval, and per
    kind how many probes it got right that the reference got wrong (gained) and the other way
    (lost). Two runs of the same settings differ by several probes per kind (docs/knowledge.md),
    so a change is read from its pairs, not from two rates side by side."""
    reference = "defaults" if "defaults" in variants else variants[0]

    def answers(variant: str) -> list[dict]:
        return read_jsonl(folder / "runs" / variant / "eval" / f"answers_{condition(variant)}.jsonl")

    against = answers(reference)
    out = []
    for variant in (v for v in variants if v != reference):
        rows = answers(variant)
        if [r["question"] for r in rows] != [r["question"] for r in against]:  # e.g. a run left in --dir by a bench of another size
            log.warning("knowledge bench: runs/%s and runs/%s answered different probes, so they are not paired; "
                        "rerun one of them in its own --dir", variant, reference)
            continue
        changed = {k: {"gained": 0, "lost": 0} for k in KINDS} | gained_and_lost(against, rows, lambda row: row["kind"])
        out.append({"variant": variant, "against": reference, **paired_difference(against, rows), "n": len(rows), "by_kind": changed})
    return out


def gained_and_lost(against: list[dict], rows: list[dict], group: Callable[[dict], str]) -> dict[str, dict[str, int]]:
    """Per group of probes, how many `rows` got right that `against` got wrong (gained) and the
    other way (lost); both lists answer the same probes in the same order."""
    changed: dict[str, dict[str, int]] = defaultdict(lambda: {"gained": 0, "lost": 0})
    for ref, row in zip(against, rows):
        if row["contained"] != ref["contained"]:
            changed[group(row)]["gained" if row["contained"] > ref["contained"] else "lost"] += 1
    return dict(changed)


def paired_table(pairs: list[dict]) -> str:
    """Markdown: one row per variant, its difference from the reference and probes gained/lost per kind."""
    lines = ["| variant | against | probes gained - lost | difference (95% interval) | " + " | ".join(f"{k} +/-" for k in KINDS) + " |",
             "|---|---|---:|---:|" + "---:|" * len(KINDS)]
    for p in pairs:
        low, high = p["ci"]
        cells = [f"+{p['by_kind'][k]['gained']} / -{p['by_kind'][k]['lost']}" for k in KINDS]
        net = sum(c["gained"] - c["lost"] for c in p["by_kind"].values())
        # the percentage from the count, not from the rounded mean, so that -9 of 228 reads -3.9%
        lines.append(f"| {p['variant']} | {p['against']} | {net:+d} of {p['n']} | {net / p['n']:+.1%} "
                     f"({low:+.1%} to {high:+.1%}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> dict:
    """What the minutes were measured on: they move with the CPU as much as with the settings
    (a LoRA step ran ~290 tokens/s with AMX bf16 and ~130 on an AVX2 machine in fp32)."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")] if cpuinfo.exists() else []
    return {"cpu": names[0] if names else platform.processor(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "bf16": bf16_supported()}


def run_benchmark(folder: Path, entities: int = 100, seed: int = 0, variants: list[str] = DEFAULT_VARIANTS,
                  model: str = "smollm2-135m-instruct", overrides: list[str] = (), probed_share: float = 0.5) -> dict:
    started = time.time()
    where = machine()
    probes_path, n_docs = write_corpus(folder, entities, seed, probed_share)
    log.info("knowledge bench: %d entities in %d documents, %s probes -> %s", entities, n_docs,
             sum(1 for _ in probes_path.open()), folder)
    rows = []
    for variant in variants:
        log.info("knowledge bench: variant %s (%s)", variant, VARIANTS[variant][0])
        rows.extend(run_variant(folder, variant, model, seed, list(overrides)))
        write_json(folder / "knowledge.json", {"entities": entities, "seed": seed, "model": model, "machine": where, "variants": rows})
    text = f"{entities} entities, seed {seed}, {model}; {where['cpu']}, {where['cores']} cores, bf16 {'on' if where['bf16'] else 'off'}\n\n" + table(rows)
    pairs = paired(folder, variants) if len(variants) > 1 else []
    if pairs:
        text += "\n\nPaired over the same probes (answer-contained):\n\n" + paired_table(pairs)
    write_text(folder / "knowledge.md", text + "\n")
    result = {"entities": entities, "seed": seed, "model": model, "machine": where, "variants": rows, "paired": pairs,
              "seconds": round(time.time() - started, 1)}
    write_json(folder / "knowledge.json", result)
    print(text)
    for defaults in (r for r in rows if r["variant"] in ("defaults", "defaults+recite")):
        print(f"\nsteep {defaults['variant']} against the targets (answer-contained):")
        for kind, target in TARGETS.items():
            got = defaults["by_kind"][kind]["contained"] if defaults["by_kind"][kind] else 0.0
            print(f"  {'met   ' if got >= target else 'MISSED'} {kind:11s} {got:6.1%} (target {target:.0%})")
        print(f"  {'met   ' if defaults['seconds'] <= 1800 else 'MISSED'} documents -> scored in {defaults['seconds'] / 60:.1f} min (target 30)")
    return result
