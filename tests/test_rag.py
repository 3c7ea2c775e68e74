"""RAG pieces without a model: prompts, citations and their check, the oracle chunk, recall and intervals."""

from steep.rag import Oracle, check_citations, citations, rag_prompt
from steep.retrieval import cite_id
from steep.stages.evaluate import bootstrap_ci, paired_difference, recall_at

A = {"id": "a", "source": "/docs/ada.md", "start": 0, "end": 40, "page": None, "row": None, "text": "Ada Quill was born in Norvik."}
B = {"id": "b", "source": "/docs/bo.txt", "start": 10, "end": 60, "page": 3, "row": None, "text": "Bo Renhart works for Carvo Shipping. Ada visited Norvik."}
C = {"id": "c", "source": "/docs/faq.jsonl", "start": 0, "end": 20, "page": None, "row": 7, "text": "Nothing relevant here."}


def test_passage_ids_name_file_page_or_row_and_span():
    assert [cite_id(c) for c in (A, B, C)] == ["ada.md:0-40", "bo.txt#p3:10-60", "faq.jsonl#7:0-20"]
    prompt = rag_prompt("Where was Ada born?", [A, B])
    assert "[ada.md:0-40] Ada Quill was born in Norvik." in prompt and prompt.endswith("Question: Where was Ada born?")


def test_citations_are_parsed_and_made_up_ones_flagged():
    reply = "Norvik [ada.md:0-40], see also [bo.txt#p3:10-60] and [ada.md:0-40] and [ghost.md:1-2]; [not a citation]"
    assert citations(reply) == ["ada.md:0-40", "bo.txt#p3:10-60", "ghost.md:1-2"]
    assert check_citations(reply, [A, B]) == {"citations": ["ada.md:0-40", "bo.txt#p3:10-60", "ghost.md:1-2"],
                                              "invalid_citations": ["ghost.md:1-2"]}


def test_the_oracle_holds_the_answer_and_prefers_what_retrieval_ranks_first():
    oracle = Oracle([A, B, C])
    question = {"question": "Where was Ada born?", "answers": ["Norvik"]}
    assert oracle.find(question, ranked=[C, A, B])["id"] == "a"  # both hold "Norvik": the better ranked wins
    assert oracle.find(question, ranked=[B, A])["id"] == "b"
    assert oracle.find(question | {"evidence": "born in Norvik"}, ranked=[B, A])["id"] == "a"  # evidence decides
    assert oracle.find({"question": "?", "answers": ["Tallis"]}, ranked=[A]) is None


def test_recall_counts_the_oracle_in_the_top_k_per_kind():
    questions = [{"kind": "x"}, {"kind": "x"}, {"kind": "y"}]
    ranked = [[A, B], [C, B], [C, A]]
    result = recall_at(questions, ranked, [A, B, None], ks=(1, 2))
    assert (result["recall@1"], result["recall@2"], result["n"], result["without_oracle"]) == (0.5, 1.0, 2, 1)
    assert result["by_kind"]["x"]["recall@1"] == 0.5 and result["by_kind"]["y"]["n"] == 0


def test_bootstrap_intervals_bracket_the_mean_and_narrow_with_more_questions():
    small, large = bootstrap_ci([1, 0] * 10), bootstrap_ci([1, 0] * 500)
    assert small[0] < 0.5 < small[1] and large[0] < 0.5 < large[1]
    assert large[1] - large[0] < small[1] - small[0]
    assert bootstrap_ci([1.0] * 30) == [1.0, 1.0]
    diff = paired_difference([{"contained": 0}] * 40, [{"contained": 1}] * 30 + [{"contained": 0}] * 10)
    assert diff["difference"] == 0.75 and 0.5 < diff["ci"][0] <= 0.75 <= diff["ci"][1] <= 1.0
