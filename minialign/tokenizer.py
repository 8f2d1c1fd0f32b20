"""A toy tokenizer: a fixed list of words (or characters) and three special tokens.

Real tokenizers learn sub-word pieces; ours is a lookup table, because the toy
tasks are built from a known vocabulary and the point is what happens *after*
tokenisation. Two details do matter for alignment and are kept:

* **PAD is not END** (``pad_id != end_id``). If padding reused the end token, the
  loss on padded positions would teach the model that END follows END forever,
  and masking out padding would also mask out the one END the model must learn
  to emit — the model would never learn to stop.
* **Right padding with a mask.** Batches are ``(B, T)`` int64 arrays padded on the
  right with PAD; a boolean ``mask`` is True exactly on real tokens.

Sequence layout used by every task (``SequenceBatch``)::

    BOS  prompt tokens ...  response tokens ...  END  PAD PAD ...
    mask:          True on BOS ... END, False on PAD
    response_mask: True on response tokens and END (what the policy generates)

A language model predicts ``ids[:, 1:]`` from ``ids[:, :-1]``; the targets to
score for RL/DPO are those where ``response_mask[:, 1:]`` is True.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PAD, BOS, END = "<pad>", "<bos>", "<end>"
SPECIALS = (PAD, BOS, END)  # ids 0, 1, 2 in every vocabulary


@dataclass(frozen=True)
class SequenceBatch:
    """Right-padded token sequences. ``ids`` (B, T) int64; both masks (B, T) bool."""

    ids: np.ndarray
    mask: np.ndarray
    response_mask: np.ndarray

    def __len__(self) -> int:
        return self.ids.shape[0]

    def take(self, rows) -> SequenceBatch:
        """The rows ``rows`` (indices or a boolean mask) as a new batch."""
        return SequenceBatch(self.ids[rows], self.mask[rows], self.response_mask[rows])


@dataclass(frozen=True)
class PreferencePairs:
    """Pairs of responses to the same prompts, row by row: ``chosen`` preferred to
    ``rejected``. The rewards are the task's *true* ones, (n,)."""

    prompt_ids: np.ndarray  # (n, P) int64, starts with BOS
    chosen: SequenceBatch  # (n, T)
    rejected: SequenceBatch  # (n, T)
    chosen_reward: np.ndarray  # (n,) float64, true reward of the chosen continuation
    rejected_reward: np.ndarray
    p_chosen: np.ndarray  # (n,) the annotator's probability of the choice it made

    def __len__(self) -> int:
        return len(self.chosen)

    def take(self, rows) -> PreferencePairs:
        """The pairs ``rows`` (indices or a boolean mask) as a new set."""
        return PreferencePairs(self.prompt_ids[rows], self.chosen.take(rows),
                               self.rejected.take(rows), self.chosen_reward[rows],
                               self.rejected_reward[rows], self.p_chosen[rows])  # fmt: skip


class Tokenizer:
    """Map tokens to ids and back.

    ``Tokenizer(vocab, level="word")`` splits text on whitespace;
    ``level="char"`` treats every character as a token (vocab entries must then
    be single characters). Ids 0, 1, 2 are PAD, BOS, END; ``vocab[i]`` gets id ``i + 3``.
    """

    def __init__(self, vocab: Sequence[str], level: str = "word"):
        if level not in ("word", "char"):
            raise ValueError(f"level must be 'word' or 'char', got {level!r}")
        vocab = list(vocab)
        for tok in vocab:
            if not isinstance(tok, str) or tok == "":
                raise ValueError(f"vocab entries must be non-empty strings, got {tok!r}")
            if tok in SPECIALS:
                raise ValueError(f"vocab must not contain the special token {tok!r}")
            if level == "word" and any(c.isspace() for c in tok):
                raise ValueError(f"word-level vocab entry {tok!r} contains whitespace")
            if level == "char" and len(tok) != 1:
                raise ValueError(f"char-level vocab entry {tok!r} is not a single character")
        if len(set(vocab)) != len(vocab):
            dupes = sorted({t for t in vocab if vocab.count(t) > 1})
            raise ValueError(f"vocab has duplicate entries: {dupes}")
        self.level = level
        self.vocab = vocab
        self.tokens = list(SPECIALS) + vocab  # id -> token
        self.token_to_id = {t: i for i, t in enumerate(self.tokens)}
        self.pad_id, self.bos_id, self.end_id = 0, 1, 2

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"Tokenizer(level={self.level!r}, vocab_size={self.vocab_size})"

    # ------------------------------------------------------------------ encode / decode
    def split(self, text: str) -> list[str]:
        return text.split() if self.level == "word" else list(text)

    def encode(
        self, text: str | Sequence[str], add_bos: bool = False, add_end: bool = False
    ) -> list[int]:
        """Text (or an already split list of tokens; specials allowed by name) -> ids."""
        tokens = self.split(text) if isinstance(text, str) else list(text)
        ids = []
        for pos, tok in enumerate(tokens):
            if tok not in self.token_to_id:
                raise ValueError(
                    f"unknown token {tok!r} at position {pos} (not in the {self.level} vocab "
                    f"of {self.vocab_size} tokens)"
                )
            ids.append(self.token_to_id[tok])
        return [self.bos_id] * add_bos + ids + [self.end_id] * add_end

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Ids -> text. Stops at the first END; PAD and BOS are skipped."""
        out = []
        for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} out of range [0, {self.vocab_size})")
            if i == self.end_id:
                break
            if i not in (self.pad_id, self.bos_id):
                out.append(self.tokens[i])
        return (" " if self.level == "word" else "").join(out)

    def decode_batch(self, ids: np.ndarray, mask: np.ndarray | None = None) -> list[str]:
        """Decode each row of a (B, T) array, keeping only positions where ``mask`` is True."""
        ids = np.asarray(ids)
        if mask is None:
            return [self.decode(row) for row in ids]
        return [self.decode(row[m]) for row, m in zip(ids, np.asarray(mask, dtype=bool))]

    def encode_batch(
        self,
        texts: Sequence[str | Sequence[str]],
        pad_to: int | None = None,
        add_bos: bool = False,
        add_end: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode and right-pad: ``ids`` (B, T) int64 and ``mask`` (B, T) bool (True = real).

        ``T = pad_to`` if given, else the longest sequence. A longer sequence is an error.
        """
        seqs = [self.encode(t, add_bos=add_bos, add_end=add_end) for t in texts]
        return pad_sequences(seqs, self.pad_id, pad_to)

    def pack(
        self,
        prompts: Sequence[Sequence[int]] | np.ndarray,
        responses: Sequence[Sequence[int]] | np.ndarray,
        pad_to: int | None = None,
        response_mask: np.ndarray | None = None,
    ) -> SequenceBatch:
        """Join prompt ids (which start with BOS) and response ids into a `SequenceBatch`.

        Tokens are kept verbatim — a PAD the policy *sampled* is a real token — except
        that each response is cut just after its first END (whatever follows is not
        part of it); one that never emits END is kept whole. If ``response_mask``
        (aligned with ``responses``) is given, only its True positions are kept: use it
        for right-padded responses that carry no END.
        """
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if response_mask is not None:
            rm = np.asarray(response_mask, dtype=bool)
            responses = [np.asarray(r)[m] for r, m in zip(responses, rm)]
        seqs, n_prompt = [], []
        for p, r in zip(prompts, responses):
            p, r = [int(t) for t in p], [int(t) for t in r]
            if self.end_id in r:
                r = r[: r.index(self.end_id) + 1]
            seqs.append(p + r)
            n_prompt.append(len(p))
        ids, mask = pad_sequences(seqs, self.pad_id, pad_to)
        response_mask = mask & (np.arange(ids.shape[1]) >= np.array(n_prompt)[:, None])
        return SequenceBatch(ids, mask, response_mask)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """A JSON-serialisable description (checkpoints store it next to the weights)."""
        return {"level": self.level, "vocab": list(self.vocab), "specials": list(SPECIALS)}

    @classmethod
    def from_dict(cls, d: dict) -> Tokenizer:
        if list(d.get("specials", SPECIALS)) != list(SPECIALS):
            raise ValueError(f"specials {d.get('specials')} differ from this version's {SPECIALS}")
        return cls(d["vocab"], level=d.get("level", "word"))

    def __eq__(self, other) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()

    __hash__ = None  # mutable-looking object compared by value


def pad_sequences(
    seqs: Sequence[Sequence[int]], pad_id: int, pad_to: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad lists of ids into ``ids`` (B, T) int64 and ``mask`` (B, T) bool."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    longest = int(lengths.max()) if len(seqs) else 0
    T = longest if pad_to is None else int(pad_to)
    if longest > T:
        raise ValueError(f"a sequence of length {longest} does not fit pad_to={pad_to}")
    ids = np.full((len(seqs), T), pad_id, dtype=np.int64)
    mask = np.arange(T)[None, :] < lengths[:, None]  # (B, T)
    if len(seqs):
        ids[mask] = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs])
    return ids, mask
