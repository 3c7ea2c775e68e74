"""Generation from a given opening (ChatModel.generate): the start of a reply handed to the model, which goes on from it."""

from __future__ import annotations

import torch

from steep.generate import ChatModel
from steep.models import load_model, load_tokenizer


def test_the_model_goes_on_from_the_opening_it_is_given(tiny_model):
    chat = ChatModel(load_model(tiny_model), load_tokenizer(tiny_model))
    asked = [{"role": "user", "content": "Where was Ada Quill born?"}]
    [reply] = chat.generate([asked], max_new_tokens=6, openings=["Ada Quill"])
    # the same as generating from the prompt with the opening's tokens after it, by hand
    ids = chat.prompt_ids(asked) + chat.tokenizer.encode("Ada Quill", add_special_tokens=False)
    out = chat.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=6,
                              do_sample=False, pad_token_id=chat.tokenizer.pad_token_id, eos_token_id=chat.tokenizer.eos_token_id)
    went_on = chat.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)
    assert went_on.strip() and reply == ("Ada Quill" + went_on).strip()
    # an empty opening is no opening: the reply the model starts itself
    assert chat.generate([asked], max_new_tokens=6, openings=[""]) == chat.generate([asked], max_new_tokens=6)
