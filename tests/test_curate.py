from steep.stages.curate import decontaminate


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


def test_no_eval_questions_keeps_everything():
    records = [qa("anything at all here")]
    assert decontaminate(records, []) == (records, [], [])
