"""The toy tokenizer: round trips, padding and masks, special tokens, errors, serialisation."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minialign.tokenizer import Tokenizer, pad_sequences

WORDS = ["the", "movie", "was", "great", "awful", "and", "but", "plot"]
word_tok = Tokenizer(WORDS)
char_tok = Tokenizer(list("0123456789+-=;a"), level="char")

word_lists = st.lists(st.sampled_from(WORDS), max_size=12)
char_texts = st.text(alphabet="0123456789+-=;a", max_size=20)


def test_special_ids_are_distinct_and_first():
    assert (word_tok.pad_id, word_tok.bos_id, word_tok.end_id) == (0, 1, 2)
    assert word_tok.pad_id != word_tok.end_id  # implementation note ppo-7
    assert word_tok.vocab_size == len(WORDS) + 3
    assert char_tok.vocab_size == 15 + 3


@given(word_lists)
def test_word_round_trip(words):
    text = " ".join(words)
    assert word_tok.decode(word_tok.encode(text)) == text
    assert word_tok.encode(words) == word_tok.encode(text)  # a list of words works too
    assert word_tok.decode(word_tok.encode(text, add_bos=True, add_end=True)) == text


@given(char_texts)
def test_char_round_trip(text):
    ids = char_tok.encode(text)
    assert len(ids) == len(text)
    assert char_tok.decode(ids) == text


def test_word_encode_normalises_whitespace():
    assert word_tok.decode(word_tok.encode("  the   movie\twas\n")) == "the movie was"


@given(word_lists, word_lists)
def test_decode_stops_at_end_and_skips_pad_and_bos(before, after):
    ids = [word_tok.bos_id, word_tok.pad_id] + word_tok.encode(before) + [word_tok.pad_id]
    ids += [word_tok.end_id] + word_tok.encode(after)
    assert word_tok.decode(ids) == " ".join(before)
    assert word_tok.decode(np.array(ids)) == " ".join(before)


@given(st.lists(word_lists, min_size=1, max_size=6), st.integers(0, 5))
def test_encode_batch_right_pads_with_a_prefix_mask(texts, extra):
    lengths = np.array([len(t) for t in texts])
    T = int(lengths.max()) + extra
    ids, mask = word_tok.encode_batch(texts, pad_to=T)
    assert (
        ids.dtype == np.int64 and mask.dtype == bool and ids.shape == mask.shape == (len(texts), T)
    )
    np.testing.assert_array_equal(mask.sum(1), lengths)
    # right padding: the mask is a prefix of each row, and padded positions hold PAD
    np.testing.assert_array_equal(mask, np.arange(T)[None, :] < lengths[:, None])
    assert np.all(ids[~mask] == word_tok.pad_id)
    for row, m, words in zip(ids, mask, texts):
        assert row[m].tolist() == word_tok.encode(words)
    # default pad_to = the longest
    ids2, _ = word_tok.encode_batch(texts)
    assert ids2.shape[1] == lengths.max()
    np.testing.assert_array_equal(ids2, ids[:, : lengths.max()])
    assert word_tok.decode_batch(ids, mask) == [" ".join(t) for t in texts]


def test_encode_batch_with_specials_counts_them_in_the_mask():
    ids, mask = word_tok.encode_batch(["the movie", "great"], add_bos=True, add_end=True)
    assert ids.tolist() == [[1, 3, 4, 2], [1, 6, 2, 0]]
    assert mask.tolist() == [[True] * 4, [True, True, True, False]]


def test_pack_joins_prompt_and_response_and_cuts_after_end():
    prompt = word_tok.encode("the movie was", add_bos=True)
    end, pad = word_tok.end_id, word_tok.pad_id
    great, awful = word_tok.encode("great awful")
    responses = [[great, end, awful, awful], [great, awful], [pad, great, end]]
    batch = word_tok.pack([prompt] * 3, responses, pad_to=8)
    assert batch.ids.tolist() == [
        [1, 3, 4, 5, great, end, 0, 0],
        [1, 3, 4, 5, great, awful, 0, 0],  # never ended: kept without END
        [1, 3, 4, 5, pad, great, end, 0],  # a sampled PAD is a real response token
    ]
    assert batch.response_mask.tolist()[0] == [False] * 4 + [True, True, False, False]
    assert batch.response_mask.tolist()[2] == [False] * 4 + [True, True, True, False]
    assert np.all(batch.response_mask <= batch.mask)
    assert len(batch) == 3
    # right-padded responses without END: the response mask says where they stop
    padded = np.array([[great, pad, pad], [great, awful, pad]])
    batch = word_tok.pack([prompt] * 2, padded, response_mask=padded != pad)
    assert batch.ids.tolist() == [[1, 3, 4, 5, great, 0], [1, 3, 4, 5, great, awful]]
    assert batch.mask.sum(1).tolist() == [5, 6]


def test_unknown_word_names_the_word():
    with pytest.raises(ValueError, match="'fantastic'"):
        word_tok.encode("the movie was fantastic")
    with pytest.raises(ValueError, match="'x'"):
        char_tok.encode("7+x")


@pytest.mark.parametrize("bad", [-1, 11, 10**6])
def test_out_of_range_id_raises(bad):
    with pytest.raises(ValueError, match=str(bad)):
        word_tok.decode([3, bad])


@pytest.mark.parametrize(
    "vocab, level, match",
    [
        (["a", "a"], "word", "duplicate"),
        (["a", "<end>"], "word", "special"),
        (["two words"], "word", "whitespace"),
        (["ab"], "char", "single character"),
        ([""], "word", "non-empty"),
        (["a"], "byte", "level"),
    ],
)
def test_bad_vocab_raises(vocab, level, match):
    with pytest.raises(ValueError, match=match):
        Tokenizer(vocab, level=level)


def test_pad_to_too_small_raises():
    with pytest.raises(ValueError, match="pad_to=2"):
        word_tok.encode_batch(["the movie was"], pad_to=2)


def test_pad_sequences_of_nothing():
    ids, mask = pad_sequences([], 0, pad_to=4)
    assert ids.shape == mask.shape == (0, 4)
    ids, mask = pad_sequences([[], []], 0)
    assert ids.shape == (2, 0)


@pytest.mark.parametrize("tok", [word_tok, char_tok])
def test_to_dict_json_round_trip(tok):
    restored = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert restored == tok
    assert restored.tokens == tok.tokens and restored.level == tok.level
    assert restored != Tokenizer(WORDS[:-1])


def test_from_dict_rejects_other_specials():
    d = word_tok.to_dict() | {"specials": ["<end>", "<bos>", "<pad>"]}
    with pytest.raises(ValueError, match="specials"):
        Tokenizer.from_dict(d)
