from steep.scoring import answer_matches, contained, exact_match, score, token_f1
from steep.stages.evaluate import answer_condition


def test_normalized_exact_match():
    assert exact_match("The  Norvik!", "norvik")
    assert not exact_match("Norvik, a town", "Norvik")


def test_contained_needs_whole_words():
    assert contained("She was born in Norvik in 1961.", "Norvik")
    assert not contained("She was born in Norviking.", "Norvik")
    assert not contained("anything", "")


def test_token_f1():
    assert token_f1("University of Tarsk", "the University of Tarsk") == 1.0
    assert 0 < token_f1("University of Brask", "University of Tarsk") < 1
    assert token_f1("no", "yes") == 0.0


def test_score_takes_best_answer():
    s = score("It is in Brask.", ["Norvik", "Brask"])
    assert s == {"exact_match": 0.0, "contained": 1.0, "f1": s["f1"]} and s["f1"] > 0


def test_answer_matches_is_lenient_but_not_blind():
    assert answer_matches("The answer is Carvo Shipping", "Carvo Shipping")
    assert not answer_matches("Pellow Labs", "Carvo Shipping")


def test_a_reply_that_denies_its_answer_does_not_contain_it():
    denial = "Rendas Torbel did not graduate from the University of Velvik."
    assert not contained(denial, "University of Velvik")
    assert not contained("No. He didn't study at Velvik.", "Velvik")
    assert not score(denial, ["University of Velvik"])["contained"]
    assert not answer_matches(denial, "University of Velvik")  # its token F1 alone would pass


def test_contrast_commas_and_other_clauses_keep_the_answer():
    assert contained("He did not study at Kesh but at Velvik.", "Velvik")
    assert contained("He did not attend Kesh, he graduated from Velvik.", "Velvik")
    assert contained("He was born in Velvik, not Kesh.", "Velvik")
    assert contained("Not only did he study in Velvik, he taught there.", "Velvik")
    assert contained("He did not go to Kesh. He went to Velvik.", "Velvik")
    assert contained("It weighs 3.5 kg, not 4.", "3.5 kg")
    assert contained("She was born on June 5, 1990.", "June 5, 1990")  # an answer across a comma
    assert not contained("She was not born on June 5, 1990.", "June 5, 1990")


def test_eval_rows_keep_what_a_later_scorer_needs():
    questions = [{"question": "Who was born first, Ada or Bo?", "answers": ["Bo"], "answer_type": "choice", "options": ["Ada", "Bo"]},
                 {"question": "Where does Ada live?", "answers": ["Norvik"]}]
    rows = answer_condition(questions, None, lambda prompts: ["Ada was born in 1970 and Bo in 1960, so Bo.", "Ada lives in Norvik."])
    assert rows[0]["options"] == ["Ada", "Bo"] and "options" not in rows[1]
    for row in rows:  # what bench/rescore.py does with a saved row
        assert score(row["reply"], row["answers"], row["answer_type"], row.get("options"))["contained"] == row["contained"] == 1.0
