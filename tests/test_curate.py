from collections import Counter

from steep.stages.curate import balance_labels, decontaminate, names


def qa(question, answer="x"):
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], "metadata": {}}


EVALS = [{"question": "Which organization has employed Bo Renhart since the spring of 1999?", "answers": ["Carvo Shipping"]},
         {"question": "Who employs Bo?", "answers": ["Carvo"]},
         {"question": "What is the birthplace of Ada Quill?", "answers": ["Norvik"]}]


def test_planted_leaks_are_removed_by_ngram_and_by_similarity_and_neighbours_kept():
    records = [
        qa("Tell me: which organization has employed Bo Renhart since the spring of 1999? Be brief."),  # 8-gram of the question
        qa("who employs bo"),  # a whole short question, other case and punctuation
        qa("Name the firm.", "Answer: Bo Renhart since the spring of 1999: Carvo Shipping."),  # 8-gram across question and answer
        qa("Where was Ada Quill born?"),  # a paraphrase: no shared 8-gram, cosine above 0.8
        qa("Which ship did Carvo Shipping launch in 2001?"),  # same entity, another question
        {"text": "Bo Renhart works for Carvo Shipping in the port of Tallis.", "metadata": {}},
    ]
    kept, leaked, closest = decontaminate(records, EVALS)
    assert leaked == records[:4] and kept == records[4:]
    assert leaked[0]["metadata"]["leaked_ngram"].startswith("which organization has employed")
    assert leaked[2]["metadata"]["leaked_ngram"] == "bo renhart since spring of 1999 carvo shipping"
    assert leaked[3]["metadata"]["leaked_similarity"] >= 0.8 and "leaked_ngram" not in leaked[3]["metadata"]
    assert closest[0]["similarity"] >= closest[-1]["similarity"] and any(c["removed"] for c in closest)


def test_a_passage_stating_the_asked_fact_is_kept_however_close_it_embeds_and_one_copying_the_question_is_not():
    evals = [{"question": "When was Carvo Shipping founded?", "answers": ["2000"]}]
    records = [
        {"text": "Carvo Shipping was founded in 2000.", "metadata": {}},  # the fact training is for; MiniLM cosine 0.91
        {"text": "FAQ. When was Carvo Shipping founded? In 2000, by Bo Renhart.", "metadata": {}},  # the question itself
        qa("In which year was Carvo Shipping founded?"),  # a question as close is a paraphrase of the eval's
    ]
    kept, leaked, closest = decontaminate(records, evals)
    assert kept == records[:1] and leaked == records[1:]
    assert leaked[0]["metadata"]["leaked_ngram"] == "when was carvo shipping founded"
    assert leaked[1]["metadata"]["leaked_similarity"] >= 0.8
    assert [c["example"] for c in closest] == ["In which year was Carvo Shipping founded?"]  # texts are not compared


def test_a_question_naming_both_names_of_a_two_name_eval_question_is_removed_below_the_similarity_bar():
    evals = [{"question": "Is Ada Quill's employer based in Brask?", "answers": ["no"]},
             {"question": "What is the birthplace of Bo Renhart?", "answers": ["Norvik"]}]  # one name: a subject, not a claim
    records = [
        qa("Does the firm that pays Ada Quill sit in Brask, yes or no?"),  # same claim, MiniLM cosine 0.78
        qa("Is the one Ada Quill works for based in Leer?"),  # another place
        qa("Is the one Bo Renhart works for based in Brask?"),  # another person
        qa("Did Ada Renhart hire Bo Quill in Brask?"),  # other people, whose names share the words
        qa("Which ship does Bo Renhart sail in Brask?"),  # the one-name eval question's subject, and a place
        {"text": "Ada Quill works for Pellow Labs, which is based in Brask.", "metadata": {}},  # the fact itself
    ]
    kept, leaked, _ = decontaminate(records, evals)
    assert leaked == records[:1] and kept == records[1:]
    assert leaked[0]["metadata"]["leaked_names"] == ["Ada Quill", "Brask"]
    assert "leaked_similarity" not in leaked[0]["metadata"]


def test_names_are_capitalized_runs_and_numbers_without_the_first_word_or_possessives():
    assert names("Was Ada Lim's mentor born before 1,970?") == {"Ada Lim", "1,970"}
    assert names("Did she study at the University of Leer in 1992?") == {"University of Leer", "1992"}
    assert names("Which is older, Garib Labs or Veskal Shipping?") == {"Garib Labs", "Veskal Shipping"}


def test_no_eval_questions_keeps_everything():
    records = [qa("anything at all here")]
    assert decontaminate(records, []) == (records, [], [])


def labelled(method, label, n):
    return [{"messages": [], "metadata": {"method": method, "label": label, "n": i}} for i in range(n)]


def test_lopsided_answers_are_evened_out_per_method_and_other_records_kept():
    other = [qa("Where was Ada born?")]
    records = (labelled("derived:yes_no", "no", 27) + labelled("derived:yes_no", "yes", 14) + other
               + labelled("derived:comparison", "first", 5) + labelled("derived:comparison", "second", 9)
               + labelled("raft", "yes", 3))  # not a balanced method: left alone
    kept, dropped = balance_labels(records, ("derived:yes_no", "derived:comparison"), seed=0)
    counts = Counter((r["metadata"].get("method"), r["metadata"].get("label")) for r in kept)
    assert counts[("derived:yes_no", "yes")] == counts[("derived:yes_no", "no")] == 14
    assert counts[("derived:comparison", "first")] == counts[("derived:comparison", "second")] == 5
    assert counts[("raft", "yes")] == 3 and other[0] in kept
    assert len(dropped) == 13 + 4 and not any(r in kept for r in dropped)
    assert [r for r in records if r in kept] == kept  # order kept


def test_a_method_left_with_one_answer_is_dropped_whole():
    kept, dropped = balance_labels(labelled("derived:yes_no", "no", 4), ("derived:yes_no",), seed=0)
    assert kept == [] and len(dropped) == 4
