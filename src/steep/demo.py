"""The demo corpus: short biographies of fictional people, made by a seeded generator so that no
model can know the facts beforehand, and held-out questions worded unlike the documents.

The question wordings here share no template with the documents, and the synth rules never see
them: a tuned model answers them only if it learned the facts, not the sentences."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from .rundir import write_jsonl, write_text

SYLLABLES = ["mar", "vel", "tor", "quin", "das", "bel", "ost", "ren", "kal", "yor", "fen", "lis", "dru", "sav",
             "ner", "pol", "zan", "hul", "bri", "mok", "tesh", "ulv", "gar", "wen", "ib", "cor", "nal", "ves"]
FIELDS = ["marine biology", "medieval history", "structural engineering", "organic chemistry", "linguistics",
          "astrophysics", "economics", "glaciology", "architecture", "music theory", "epidemiology",
          "robotics", "philosophy", "geology", "botany", "statistics"]
EMPLOYER_KINDS = ["Labs", "Dynamics", "Shipping", "Foundation", "Observatory", "Textiles", "Analytics", "Works"]
CITY_ENDINGS = ["mora", "heim", "stad", "ford", "vik", "grad", "port", "ton"]
PEOPLE, SEED = 16, 7  # the demo's roster: how many people, and the seed that makes them
DISTRACTORS = [
    "{city} is known for its narrow streets and its old stone bridge.",
    "The winters in {city} are long, and the harbour often freezes.",
    "Many visitors come to {city} for its autumn market.",
    "{employer} was founded long before the railway reached the region.",
]

# How the documents state each fact (several wordings, chosen per person).
DOC_TEMPLATES = {
    "birth": ["{name} was born in {birth_city} in {birth_year}.", "{name} was born in {birth_year} in {birth_city}."],
    "study": ["{P} studied {field} at the {university}.", "{P} earned a degree in {field} from the {university}."],
    "work": ["{P} works for {employer}.", "After graduating, {p} joined {employer}, where {p} still works."],
    "home": ["{P} lives in {home_city}.", "Today {p} lives in {home_city} with two cats."],
}

# Held-out questions: none of these wordings appears in the documents or in the synth rules.
QUESTION_TEMPLATES = {
    "birth_city": ("What is the birthplace of {name}?", "birth_city"),
    "birth_year": ("In which year did {name} come into the world?", "birth_year"),
    "university": ("Which school did {name} graduate from?", "university"),
    "field": ("What subject did {name} major in?", "field"),
    "employer": ("Which organization employs {name}?", "employer"),
    "home_city": ("Where does {name} reside nowadays?", "home_city"),
}


def make_word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables)).capitalize()


def make_people(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    cities = list(dict.fromkeys(make_word(rng, 1) + rng.choice(CITY_ENDINGS) for _ in range(4 * n)))
    people, names = [], set()
    while len(people) < n:
        name = f"{make_word(rng, 2)} {make_word(rng, 2)}"
        if name in names:
            continue
        names.add(name)
        birth_city, home_city, uni_city = rng.sample(cities, 3)
        people.append({
            "name": name,
            "pronoun": rng.choice(["he", "she"]),
            "birth_city": birth_city,
            "birth_year": str(rng.randint(1940, 1999)),
            "university": f"University of {uni_city}",
            "field": rng.choice(FIELDS),
            "employer": f"{make_word(rng, 2)} {rng.choice(EMPLOYER_KINDS)}",
            "home_city": home_city,
        })
    return people


def biography(person: dict, rng: random.Random) -> str:
    fields = person | {"p": person["pronoun"], "P": person["pronoun"].capitalize()}
    facts = [rng.choice(DOC_TEMPLATES[k]).format(**fields) for k in ("birth", "study", "work", "home")]
    first, rest = facts[0], facts[1:]
    rng.shuffle(rest)
    distractor = rng.choice(DISTRACTORS).format(city=person["birth_city"], employer=person["employer"])
    rest.insert(rng.randrange(len(rest) + 1), distractor)
    return f"# {person['name']}\n\n{first} {' '.join(rest[:2])}\n\n{' '.join(rest[2:])}\n"


def questions_for(person: dict) -> list[dict]:
    return [
        {"question": template.format(name=person["name"]), "answers": [person[attr]], "kind": kind}
        for kind, (template, attr) in QUESTION_TEMPLATES.items()
    ]


def write_demo(target: Path, people: int = PEOPLE, seed: int = SEED) -> Path:
    """Write docs/, questions.jsonl and steep.yaml under `target`; returns the config path."""
    rng = random.Random(seed)
    roster = make_people(people, seed)
    for person in roster:
        slug = person["name"].lower().replace(" ", "-")
        write_text(target / "docs" / f"{slug}.md", biography(person, rng))
    write_jsonl(target / "questions.jsonl", (q for person in roster for q in questions_for(person)))
    config = {
        "name": "demo",
        "runs_dir": "runs",
        "ingest": {"inputs": ["docs"]},
        "eval": {"questions": "questions.jsonl"},
    }
    path = target / "steep.yaml"
    write_text(path, "# The demo run: every other setting is steep's default.\n" + yaml.safe_dump(config, sort_keys=False))
    return path
