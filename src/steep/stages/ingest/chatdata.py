"""Ready-made training data in the formats other tools export, normalized to OpenAI-style
`messages`: OpenAI `messages`, ShareGPT `conversations`, Alpaca `instruction/input/output`,
`prompt/completion`, and InstructLab's qna.yaml seed examples."""

from __future__ import annotations

from typing import Any

ROLES = {
    "system": "system", "user": "user", "human": "user", "assistant": "assistant",
    "gpt": "assistant", "chatgpt": "assistant", "bot": "assistant", "model": "assistant",
}


def to_messages(row: dict[str, Any]) -> list[dict] | None:
    """The conversation in `row`, or None when the row is not training data in a known format.
    A row that has a format's keys but breaks its rules raises ValueError saying how."""
    if "messages" in row:
        turns = _turns(row["messages"], "messages", "role", "content")
    elif "conversations" in row:
        turns = _turns(row["conversations"], "conversations", "from", "value")
    elif "instruction" in row and "output" in row:
        extra = row.get("input") or ""
        prompt = f"{row['instruction']}\n\n{extra}" if extra else row["instruction"]
        turns = [("system", row["system"])] if row.get("system") else []
        turns += [("user", prompt), ("assistant", row["output"])]
    elif "prompt" in row and "completion" in row:
        prompt = row["prompt"]
        turns = _turns(prompt, "prompt", "role", "content") if isinstance(prompt, list) else [("user", prompt)]
        completion = row["completion"]
        turns += _turns(completion, "completion", "role", "content") if isinstance(completion, list) else [("assistant", completion)]
    else:
        return None
    messages = []
    for role, content in turns:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} (known: {', '.join(sorted(ROLES))})")
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"a {role} turn has no text")
        messages.append({"role": ROLES[role], "content": content})
    if not any(m["role"] == "user" for m in messages) or messages[-1]["role"] != "assistant":
        raise ValueError("a conversation needs a user turn and must end with an assistant turn")
    return messages


def _turns(value: Any, field: str, role_key: str, content_key: str) -> list[tuple[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ValueError(f"'{field}' must be a list of objects")
    # ShareGPT exports also use role/content; accept either spelling
    return [(str(t.get(role_key, t.get("role", ""))).lower(), t.get(content_key, t.get("content"))) for t in value]


def qna_examples(data: Any) -> list[tuple[str | None, list[tuple[str, str]]]]:
    """(context, [(question, answer), ...]) per seed example of an InstructLab qna.yaml: knowledge
    files (version 3: `questions_and_answers`) and skill files (`question`/`answer`)."""
    if not isinstance(data, dict) or not isinstance(data.get("seed_examples"), list):
        raise ValueError("not an InstructLab qna.yaml: no 'seed_examples' list")
    examples = []
    for number, example in enumerate(data["seed_examples"], 1):
        if not isinstance(example, dict):
            raise ValueError(f"seed example {number} is not a mapping")
        pairs = example.get("questions_and_answers") or [example]
        qa = [(str(p["question"]).strip(), str(p["answer"]).strip()) for p in pairs if isinstance(p, dict) and p.get("question") and p.get("answer")]
        context = example.get("context")
        if not qa and not context:
            raise ValueError(f"seed example {number} has neither a context nor a question/answer")
        examples.append((str(context) if context else None, qa))
    return examples
