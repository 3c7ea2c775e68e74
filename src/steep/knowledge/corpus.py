"""A seeded world of fictional people and organizations, and the documents that describe it.

Nothing here can be known to a model beforehand: every name, date and number is drawn from a seed.
The documents are written the way real ones are: several entities per document, facts spread over
two paragraphs in varied order, pronouns after the first mention, and sentences that state nothing
the probes ask about. A person's employer is an organization described elsewhere, so some facts
(the employer's city) need two documents."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ..demo import CITY_ENDINGS, EMPLOYER_KINDS, FIELDS, make_word

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
PRODUCTS = ["ship engines", "weather satellites", "hearing aids", "bicycle frames", "seed varieties", "water pumps",
            "typefaces", "cargo drones", "solar roof tiles", "violin strings", "lab glassware", "railway signals",
            "board games", "insulin pens", "fishing nets", "telescope mirrors"]

# How the documents state each fact; {P}/{p} is the pronoun (people) or "The company"/"it" (organizations).
PERSON_SENTENCES = {
    "birth": ["{name} was born on {birth_date} in {birth_city}.", "{name} was born in {birth_city} on {birth_date}."],
    "study": ["{P} studied {field} at the {university}.", "{P} earned a degree in {field} from the {university}."],
    "employer": ["{P} works for {employer}.", "After finishing {poss} studies, {p} joined {employer}, where {p} still works."],
    "home": ["{P} lives in {home_city}.", "Today {p} lives in {home_city}."],
}
ORGANIZATION_SENTENCES = {
    "founded": ["{name} was founded in {founded_year} by {founder}.", "{founder} founded {name} in {founded_year}."],
    "hq": ["{name} has its headquarters in {hq_city}.", "The company is based in {hq_city}."],
    "employees": ["{name} employs {employees} people.", "The company has {employees} employees."],
    "product": ["{name} makes {product}.", "The company is known for its {product}."],
}
FILLER = [
    "{city} is known for its narrow streets and an old stone bridge.",
    "The winters in {city} are long, and the harbour often freezes.",
    "Many visitors come to {city} for its autumn market.",
    "The local newspaper once ran a long piece about the town's trams.",
    "A small museum near the station shows maps of the old coastline.",
    "Rain is common there in spring.",
]


@dataclass
class World:
    people: list[dict] = field(default_factory=list)
    organizations: list[dict] = field(default_factory=list)
    cities: list[str] = field(default_factory=list)
    unused_names: list[str] = field(default_factory=list)  # names of nobody: for questions about entities that do not exist
    unused_organizations: list[str] = field(default_factory=list)

    def organization(self, name: str) -> dict:
        return next(o for o in self.organizations if o["name"] == name)


def make_world(entities: int, seed: int) -> World:
    """`entities` entities, 60% people and 40% organizations (at least one of each)."""
    if entities < 2:
        raise ValueError("the knowledge benchmark needs at least 2 entities")
    rng = random.Random(seed)
    n_orgs = max(1, round(0.4 * entities))
    n_people = entities - n_orgs
    cities = _unique(lambda: make_word(rng, 1) + rng.choice(CITY_ENDINGS), max(12, entities // 2))
    person_names = _unique(lambda: f"{make_word(rng, 2)} {make_word(rng, 2)}", n_people + 2 * entities + 8)
    org_names = _unique(lambda: f"{make_word(rng, 2)} {rng.choice(EMPLOYER_KINDS)}", 2 * n_orgs + 8)
    world = World(cities=cities)
    founders = iter(person_names[n_people:])  # founders are named but have no profile of their own
    for name in org_names[:n_orgs]:
        world.organizations.append({
            "name": name, "founded_year": str(rng.randint(1850, 2015)), "founder": next(founders),
            "hq_city": rng.choice(cities), "employees": str(rng.randrange(40, 20000, 10)), "product": rng.choice(PRODUCTS),
        })
    for name in person_names[:n_people]:
        birth_city, home_city, uni_city = rng.sample(cities, 3)
        year, month, day = rng.randint(1940, 1999), rng.randrange(12), rng.randint(1, 28)
        world.people.append({
            "name": name, "pronoun": rng.choice(["he", "she"]),
            "birth_date": f"{day} {MONTHS[month]} {year}", "birth_year": str(year), "birth_month": MONTHS[month], "birth_day": day,
            "birth_city": birth_city, "university": f"University of {uni_city}", "field": rng.choice(FIELDS),
            "employer": rng.choice(world.organizations)["name"], "home_city": home_city,
        })
    world.unused_names = list(founders)[:entities]
    world.unused_organizations = org_names[n_orgs:]
    return world


def _unique(make: Callable[[], str], n: int) -> list[str]:
    out: dict[str, None] = {}
    while len(out) < n:
        out[make()] = None
    return list(out)


def person_section(person: dict, rng: random.Random) -> str:
    he = person["pronoun"]
    words = person | {"p": he, "P": he.capitalize(), "poss": "his" if he == "he" else "her"}
    first = rng.choice(PERSON_SENTENCES["birth"]).format(**words)
    rest = [rng.choice(PERSON_SENTENCES[k]).format(**words) for k in ("study", "employer", "home")]
    return _section(person["name"], first, rest, person["birth_city"], rng)


def organization_section(org: dict, rng: random.Random) -> str:
    words = org | {"P": "The company", "p": "the company"}
    first = ORGANIZATION_SENTENCES["founded"][0].format(**words)
    rest = [rng.choice(ORGANIZATION_SENTENCES[k]).format(**words) for k in ("hq", "employees", "product")]
    return _section(org["name"], first, rest, org["hq_city"], rng)


def _section(name: str, first: str, rest: list[str], city: str, rng: random.Random) -> str:
    """Two paragraphs under the entity's heading: the full name first, the other facts shuffled,
    one or two sentences that state nothing asked about."""
    rng.shuffle(rest)
    for filler in rng.sample(FILLER, rng.randint(1, 2)):
        rest.insert(rng.randrange(len(rest) + 1), filler.format(city=city))
    cut = rng.randint(1, len(rest) - 1)
    return f"## {name}\n\n{first} {' '.join(rest[:cut])}\n\n{' '.join(rest[cut:])}\n"


def documents(world: World, seed: int, per_document: int = 3) -> list[tuple[str, str]]:
    """(file name, Markdown text) pairs, each about `per_document` entities of both kinds, mixed."""
    rng = random.Random(seed + 1)
    sections = [person_section(p, rng) for p in world.people] + [organization_section(o, rng) for o in world.organizations]
    rng.shuffle(sections)
    docs = []
    for i in range(0, len(sections), per_document):
        number = i // per_document + 1
        docs.append((f"register-{number:03d}.md", f"# Regional register, part {number}\n\n" + "\n".join(sections[i : i + per_document])))
    return docs
