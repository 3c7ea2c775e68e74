from steep.stages.curate import decontaminate


def qa(question):
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": "x"}], "metadata": {}}


def test_a_planted_leak_is_removed_and_neighbours_kept():
    evals = ["Which organization has employed Bo Renhart since the spring of 1999?", "Who employs Bo?"]
    records = [
        qa("Tell me: which organization has employed Bo Renhart since the spring of 1999? Be brief."),  # 8-gram leak
        qa("who employs bo"),  # whole short question, different case and punctuation
        qa("Which organization employs Bo Renhart?"),  # shares fewer than 8 words in a row
        {"text": "Bo Renhart works for Carvo Shipping.", "metadata": {}},
    ]
    kept, leaked = decontaminate(records, evals)
    assert [r["messages"][0]["content"] for r in leaked] == [records[0]["messages"][0]["content"], "who employs bo"]
    assert records[2] in kept and records[3] in kept
    assert leaked[0]["metadata"]["leaked_ngram"].startswith("which organization has employed")


def test_no_eval_questions_keeps_everything():
    records = [qa("anything at all here")]
    assert decontaminate(records, []) == (records, [])
