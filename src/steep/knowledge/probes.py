"""Probe questions about a generated world, five kinds per entity, each scored on its own
(FineTuneBench's probe kinds, methods.md §2):

- direct: worded like the documents ("Where was X born?");
- rephrased: vocabulary and syntax that neither the documents nor synth's templates use
  (tests/test_knowledge.py checks that these pools stay disjoint);
- yesno: derived yes/no questions that need a stated fact compared or joined with another
  ("Was X born before 1970?", "Is X's employer based in Y?"), half yes and half no;
- comparison: two entities of a kind ("Who was born earlier, X or Y?"), either order;
- unknown: attributes no document states, or entities that do not exist; the right answer is
  to say it is not known.

As in Physics of LMs 3.1, only part of the entities is probed (`probed_share`, half by default):
curate removes every training question close to a probe (MiniLM cosine >= 0.8), which for short
questions about one entity means nearly all of them, so the other entities' QA pairs are what
teaches the model to answer, and the probed entities' facts must come from the text. Direct probes
measure memorization of what was trained (FineTuneBench's first probe), so they are marked
`held_out: false` and not used to decontaminate; every other kind is held out."""

from __future__ import annotations

import random

from .corpus import MONTHS, World

# (attribute, question, gold answers as fields of the entity); {name} is the entity
DIRECT_PERSON = [
    ("birth_date", "When was {name} born?", ["birth_date", "birth_date_us"]),
    ("birth_city", "Where was {name} born?", ["birth_city"]),
    ("university", "At which university did {name} study?", ["university"]),
    ("field", "What did {name} study?", ["field"]),
    ("employer", "Who does {name} work for?", ["employer"]),
    ("home_city", "Where does {name} live?", ["home_city"]),
]
REPHRASED_PERSON = [
    ("birth_year", "Which year did {name} come into the world?", ["birth_year"]),
    ("birth_city", "Name the town that is the birthplace of {name}.", ["birth_city"]),
    ("university", "Which institution of higher education is {name}'s alma mater?", ["university"]),
    ("field", "What academic discipline did {name} major in?", ["field"]),
    ("employer", "Which organization has {name} on its payroll?", ["employer"]),
    ("home_city", "{name} resides in which town these days?", ["home_city"]),
]
DIRECT_ORGANIZATION = [
    ("founded_year", "When was {name} founded?", ["founded_year"]),
    ("founder", "Who founded {name}?", ["founder"]),
    ("hq_city", "Where does {name} have its headquarters?", ["hq_city"]),
    ("employees", "How many people does {name} employ?", ["employees", "employees_commas"]),
    ("product", "What does {name} make?", ["product"]),
]
REPHRASED_ORGANIZATION = [
    ("founded_year", "{name} came into existence in which year?", ["founded_year"]),
    ("founder", "Whose initiative established {name}?", ["founder"]),
    ("hq_city", "Name the town hosting the head office of {name}.", ["hq_city"]),
    ("employees", "What is the size of {name}'s workforce?", ["employees", "employees_commas"]),
    ("product", "Which goods does {name} manufacture?", ["product"]),
]
YESNO = {
    "born_before": "Was {name} born before {year}?",
    "employer_city": "Is {name}'s employer based in {city}?",
    "founded_before": "Was {name} founded before {year}?",
    "more_employees": "Does {name} have more than {number} employees?",
}
COMPARISON = {
    "born_earlier": "Who was born earlier, {a} or {b}?",
    "founded_earlier": "Which is older, {a} or {b}?",
    "more_employees": "Which has the bigger staff, {a} or {b}?",
}
UNKNOWN = {
    "spouse": "What is the name of {name}'s spouse?",
    "blood_type": "What is {name}'s blood type?",
    "cfo": "Who is the chief financial officer of {name}?",
    "revenue": "What was {name}'s revenue last year?",
    "no_person": "When was {name} born?",
    "no_organization": "Where does {name} have its headquarters?",
}
PERSON_TEMPLATES = DIRECT_PERSON + REPHRASED_PERSON
ORGANIZATION_TEMPLATES = DIRECT_ORGANIZATION + REPHRASED_ORGANIZATION
KINDS = ("direct", "rephrased", "yesno", "comparison", "unknown")


def _golds(entity: dict, fields: list[str]) -> list[str]:
    extra = {}
    if "birth_date" in entity:  # "3 May 1965" is also written "May 3, 1965"
        extra["birth_date_us"] = f"{entity['birth_month']} {entity['birth_day']}, {entity['birth_year']}"
    if "employees" in entity:
        extra["employees_commas"] = f"{int(entity['employees']):,}"
    values = entity | extra
    return list(dict.fromkeys(values[f] for f in fields))


def _probe(kind: str, entity: str, attribute: str, question: str, answers: list[str], **extra) -> dict:
    answer_type = {"yesno": "yes_no", "comparison": "choice", "unknown": "unanswerable"}.get(kind, "short")
    return {"question": question, "answers": answers, "kind": kind, "answer_type": answer_type, "entity": entity,
            "attribute": attribute, "held_out": kind != "direct", **extra}


def probes(world: World, seed: int, probed_share: float = 0.5) -> list[dict]:
    """All probes for a seeded `probed_share` of the people and of the organizations; yes/no
    answers balanced, comparison orders shuffled."""
    rng = random.Random(seed + 2)
    people = sorted(rng.sample(world.people, max(2, round(probed_share * len(world.people)))), key=world.people.index)
    orgs = sorted(rng.sample(world.organizations, max(2, round(probed_share * len(world.organizations)))), key=world.organizations.index)
    out: list[dict] = []
    for kind, people_pool, org_pool in (("direct", DIRECT_PERSON, DIRECT_ORGANIZATION), ("rephrased", REPHRASED_PERSON, REPHRASED_ORGANIZATION)):
        for entities, pool in ((people, people_pool), (orgs, org_pool)):
            for e in entities:
                out += [_probe(kind, e["name"], attr, q.format(name=e["name"]), _golds(e, fields)) for attr, q, fields in pool]
    return out + _yesno(world, people, orgs, rng) + _comparisons(world, people, orgs, rng) + _unknown(world, people, orgs, rng)


def _yesno(world: World, people: list[dict], orgs: list[dict], rng: random.Random) -> list[dict]:
    out = []
    for p in people:
        yes = rng.random() < 0.5
        year = int(p["birth_year"]) + (rng.randint(1, 10) if yes else -rng.randint(0, 9))  # born before `year`?
        out.append(_probe("yesno", p["name"], "born_before", YESNO["born_before"].format(name=p["name"], year=year), ["yes" if yes else "no"]))
        hq = world.organization(p["employer"])["hq_city"]
        city = hq if rng.random() < 0.5 else rng.choice([c for c in world.cities if c != hq])
        out.append(_probe("yesno", p["name"], "employer_city", YESNO["employer_city"].format(name=p["name"], city=city), ["yes" if city == hq else "no"]))
    for o in orgs:
        yes = rng.random() < 0.5
        year = int(o["founded_year"]) + (rng.randint(1, 15) if yes else -rng.randint(0, 14))
        out.append(_probe("yesno", o["name"], "founded_before", YESNO["founded_before"].format(name=o["name"], year=year), ["yes" if yes else "no"]))
        employees = int(o["employees"])
        yes = rng.random() < 0.5
        number = max(10, int(round(employees * (rng.uniform(0.3, 0.8) if yes else rng.uniform(1.25, 3)), -1)))
        out.append(_probe("yesno", o["name"], "more_employees", YESNO["more_employees"].format(name=o["name"], number=f"{number:,}"), ["yes" if yes else "no"]))
    return out


def _comparisons(world: World, people: list[dict], orgs: list[dict], rng: random.Random) -> list[dict]:
    """One per probed entity, against another probed entity of its kind whose value differs."""
    def by(entity: dict, attribute: str) -> tuple[int, ...]:
        if attribute == "birth_date":
            return int(entity["birth_year"]), MONTHS.index(entity["birth_month"]), entity["birth_day"]
        return (int(entity[attribute]),)

    out = []
    for entities, comparisons in ((people, [("born_earlier", "birth_date", min)]),
                                  (orgs, [("founded_earlier", "founded_year", min), ("more_employees", "employees", max)])):
        for i, e in enumerate(entities):
            name, attribute, pick = comparisons[i % len(comparisons)]
            others = [o for o in entities if o is not e and by(o, attribute) != by(e, attribute)]
            if not others:
                continue
            other = rng.choice(others)
            a, b = (e, other) if rng.random() < 0.5 else (other, e)
            winner = pick((a, b), key=lambda x: by(x, attribute))
            out.append(_probe("comparison", e["name"], name, COMPARISON[name].format(a=a["name"], b=b["name"]), [winner["name"]],
                              options=[a["name"], b["name"]]))
    return out


def _unknown(world: World, people: list[dict], orgs: list[dict], rng: random.Random) -> list[dict]:
    """One per probed entity: half an attribute no document states, half an entity that does not exist."""
    out = []
    fakes = iter(world.unused_names)
    fake_orgs = iter(world.unused_organizations)
    for kind, entities, missing in (("person", people, ["spouse", "blood_type"]), ("organization", orgs, ["cfo", "revenue"])):
        for i, e in enumerate(entities):
            if i % 2 == 0:
                attribute = rng.choice(missing)
                name = e["name"]
            else:
                attribute = "no_person" if kind == "person" else "no_organization"
                name = next(fakes) if kind == "person" else next(fake_orgs)
            out.append(_probe("unknown", name, attribute, UNKNOWN[attribute].format(name=name), ["unknown"]))
    return out
