"""Sentiment control: a miniature of the IMDb task in the DPO paper.

A prompt opens a movie review ("the plot was"); the model continues it. Every
word carries a hidden valence in [-1, 1], and the *true reward* is a known
function of the continuation — so we can watch RLHF, DPO and best-of-n push
the true reward up against the KL from the reference, and see the gaming they
invite. The pre-training corpus mixes positive, negative and mixed reviews, so
the SFT model starts neutral on average.

True reward of a continuation $y$ of $L$ words (up to END):

$$ r(y) = \\frac{1}{L}\\sum_{t=1}^{L} v(y_t) \\;-\\; \\lambda_{\\rm rep}\\,
          \\frac{\\#\\{\\text{repeated adjectives}\\}}{L}, \\qquad r(\\varnothing) = -1, $$

so "great great great great" scores $1 - 2 \\cdot 3/4 = -0.5$: repeating a good
word is gibberish, not praise. Filler words have valence 0 and dilute the mean.
The maximum, $r = 1$, is one strong positive adjective.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..autograd.engine import get_rng
from ..tokenizer import PreferencePairs, SequenceBatch, Tokenizer

POSITIVE = {
    "great": 1.0, "excellent": 1.0, "wonderful": 1.0, "brilliant": 0.9, "superb": 0.9,
    "amazing": 0.9, "beautiful": 0.8, "charming": 0.7, "enjoyable": 0.7, "funny": 0.6,
    "moving": 0.6, "good": 0.6, "clever": 0.6, "nice": 0.5, "solid": 0.4, "fine": 0.3,
}  # fmt: skip
NEGATIVE = {
    "awful": -1.0, "terrible": -1.0, "horrible": -1.0, "dreadful": -0.9, "boring": -0.8,
    "painful": -0.8, "stupid": -0.7, "dull": -0.7, "weak": -0.6, "bad": -0.6, "poor": -0.6,
    "bland": -0.5, "messy": -0.5, "forgettable": -0.4, "slow": -0.4, "silly": -0.3,
}  # fmt: skip
MILD = {"okay": 0.1, "strange": 0.0, "short": 0.0, "long": -0.1, "predictable": -0.2}
NOUNS = ["movie", "film", "acting", "plot", "story", "ending", "cast", "music"]
STRUCTURE = ["the", "this", "was", "is", "and", "but", "very", "quite", "really", "so"]
PROMPTS = [
    "the movie was", "the film is", "this movie was", "this film is", "the acting was",
    "the plot is", "the story was", "the ending was", "the cast is", "the music was",
]  # fmt: skip
INTENSIFIERS = ["very", "quite", "really", "so"]


def _vocab() -> list[str]:
    words = [*POSITIVE, *NEGATIVE, *MILD, *NOUNS, *STRUCTURE]
    return list(dict.fromkeys(words))  # keep order, drop duplicates


class SentimentTask:
    """Tokenizer, corpus, prompts, true reward and preference data for sentiment control.

    ``prompt_len`` is 4 (BOS + 3 words) for every prompt, so prompts stack into a
    dense (n, 4) array; a continuation has at most ``max_words`` words plus END.
    """

    def __init__(self, max_words: int = 9, lambda_rep: float = 2.0, empty_reward: float = -1.0):
        if not 1 <= max_words:
            raise ValueError(f"max_words must be >= 1, got {max_words}")
        self.tokenizer = Tokenizer(_vocab(), level="word")
        self.max_words, self.lambda_rep, self.empty_reward = max_words, lambda_rep, empty_reward
        self.prompt_len = 4
        self.block_size = self.prompt_len + max_words + 1 + 2  # + END + headroom = 16
        tok = self.tokenizer
        self.valence = np.zeros(tok.vocab_size)  # (V,) v(w); 0 for structure and specials
        self.is_adjective = np.zeros(tok.vocab_size, dtype=bool)
        for word, v in {**POSITIVE, **NEGATIVE, **MILD}.items():
            self.valence[tok.token_to_id[word]] = v
            self.is_adjective[tok.token_to_id[word]] = True
        self._pos, self._neg, self._mild = list(POSITIVE), list(NEGATIVE), list(MILD)

    # ------------------------------------------------------------------ text generator
    def sample_prompts(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """``n`` prompts as a dense (n, 4) int64 array: BOS + 3 words."""
        idx = get_rng(rng).integers(len(PROMPTS), size=n)
        return np.array([self.tokenizer.encode(PROMPTS[i], add_bos=True) for i in idx]).reshape(
            n, self.prompt_len
        )

    def sample_continuation(self, rng: np.random.Generator, p_positive: float) -> list[str]:
        """One continuation (a list of words, no END). Each adjective is positive with
        probability ``p_positive``, else negative (10% mild); none repeats."""
        rng = get_rng(rng)
        pools = {"pos": list(self._pos), "neg": list(self._neg), "mild": list(self._mild)}

        def adjective() -> list[str]:
            u = rng.random()
            kind = "mild" if u < 0.1 else "pos" if u < 0.1 + 0.9 * p_positive else "neg"
            pool = pools[kind] or pools["pos"] + pools["neg"]  # fall back if a pool runs dry
            word = pool[rng.integers(len(pool))]
            for p in pools.values():
                if word in p:
                    p.remove(word)
            return ([INTENSIFIERS[rng.integers(4)]] if rng.random() < 0.3 else []) + [word]

        words = adjective()
        while len(words) < self.max_words and rng.random() < 0.7:
            tail = [["and", "but"][rng.integers(2)]]
            if rng.random() < 0.5:
                tail += ["the", NOUNS[rng.integers(len(NOUNS))], ["was", "is"][rng.integers(2)]]
            tail += adjective()
            if len(words) + len(tail) > self.max_words:
                break
            words += tail
        return words

    def sample_texts(self, n: int, rng: np.random.Generator | None = None):
        """``n`` (prompt, continuation) string pairs; the mood of each review ~ U(0, 1)."""
        rng = get_rng(rng)
        prompts = rng.integers(len(PROMPTS), size=n)
        moods = rng.random(n)
        return [
            (PROMPTS[i], " ".join(self.sample_continuation(rng, m))) for i, m in zip(prompts, moods)
        ]

    def corpus(self, n: int, rng: np.random.Generator | None = None) -> SequenceBatch:
        """``n`` reviews for SFT: ``BOS prompt continuation END`` right-padded to block_size."""
        tok = self.tokenizer
        pairs = self.sample_texts(n, rng)
        prompts = [tok.encode(p, add_bos=True) for p, _ in pairs]
        responses = [tok.encode(c, add_end=True) for _, c in pairs]
        return tok.pack(prompts, responses, pad_to=self.block_size)

    # ------------------------------------------------------------------ the true reward
    def true_reward(self, ids, mask=None) -> np.ndarray:
        """True reward per row, float64 (B,). ``ids`` is (B, T) token ids and ``mask``
        (B, T) marks the continuation (e.g. a ``response_mask``; None = all of ``ids``).
        Only masked tokens before the first masked END count. A list of strings is
        also accepted (each one a continuation). Padding never changes the result."""
        if isinstance(ids, list | tuple) and (len(ids) == 0 or isinstance(ids[0], str)):
            ids, mask = self.tokenizer.encode_batch(ids)
        ids = np.asarray(ids, dtype=np.int64)
        mask = np.ones(ids.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if ids.ndim != 2 or mask.shape != ids.shape:
            raise ValueError(
                f"ids must be (B, T) with a mask of the same shape, got {ids.shape}, {mask.shape}"
            )
        V = self.tokenizer.vocab_size
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise ValueError(
                f"token ids must lie in [0, {V}), got range [{ids.min()}, {ids.max()}]"
            )
        ended = np.cumsum(mask & (ids == self.tokenizer.end_id), axis=1) > 0
        valid = mask & ~ended  # (B, T) words of the continuation
        L = valid.sum(1)  # (B,)
        B = ids.shape[0]
        cells = (np.arange(B)[:, None] * V + ids)[valid].astype(np.intp)  # wasm32: intp is int32
        counts = np.bincount(cells, minlength=B * V).reshape(B, V)
        repeats = (np.maximum(counts - 1, 0) * self.is_adjective).sum(1)  # (B,)
        total_valence = (self.valence[ids] * valid).sum(1)
        Ls = np.maximum(L, 1)
        r = total_valence / Ls - self.lambda_rep * repeats / Ls
        return np.where(L > 0, r, self.empty_reward)

    def response_lengths(self, ids, mask=None) -> np.ndarray:
        """Number of continuation words (before END) per row, int64 (B,)."""
        ids = np.asarray(ids)
        mask = np.ones(ids.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        ended = np.cumsum(mask & (ids == self.tokenizer.end_id), axis=1) > 0
        return (mask & ~ended).sum(1)

    # ------------------------------------------------------------------ preference data
    def make_preference_pairs(
        self,
        n: int,
        rng: np.random.Generator | None = None,
        policy_sampler: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        beta_bt: float = 4.0,
        length_bias: float = 0.0,
    ) -> PreferencePairs:
        """``n`` prompts, two continuations each, labelled by a Bradley–Terry annotator.

        The annotator's utility is $u(y) = r(y) + b\\cdot|y|$ (``length_bias`` $b$, in
        reward units per word: $b > 0$ is a static bias towards long answers), and

        $$ P(y_1 \\text{ chosen}) = \\sigma\\big(\\beta_{BT}\\,(u(y_1) - u(y_2))\\big). $$

        $\\beta_{BT} \\to \\infty$ is a perfect annotator, $\\beta_{BT} = 0$ a coin flip.
        Continuations come from the corpus generator, or from
        ``policy_sampler(prompt_ids (n, P), rng)`` if given, returning response ids
        (n, R) (cut after the first END) or a pair ``(ids, mask)`` (see `Tokenizer.pack`).
        """
        if not beta_bt >= 0:
            raise ValueError(f"beta_bt must be >= 0, got {beta_bt}")
        rng, tok = get_rng(rng), self.tokenizer
        prompts = self.sample_prompts(n, rng)  # (n, P)

        def draw() -> SequenceBatch:
            if policy_sampler is None:
                moods = rng.random(n)
                resp = [tok.encode(self.sample_continuation(rng, m), add_end=True) for m in moods]
            else:
                out = policy_sampler(prompts, rng)
                resp, mask = out if isinstance(out, tuple) else (out, None)
                return tok.pack(prompts, np.asarray(resp), self.block_size, mask)
            return tok.pack(prompts, resp, pad_to=self.block_size)

        a, b = draw(), draw()
        r_a = self.true_reward(a.ids, a.response_mask)
        r_b = self.true_reward(b.ids, b.response_mask)
        u_a = r_a + length_bias * self.response_lengths(a.ids, a.response_mask)
        u_b = r_b + length_bias * self.response_lengths(b.ids, b.response_mask)
        z = beta_bt * (u_a - u_b)  # (n,)
        p_a = np.exp(-np.logaddexp(0.0, -z))  # sigma(z), without overflow for any beta_bt
        a_wins = rng.random(n) < p_a

        def pick(x, y):
            return np.where(a_wins[:, None], x, y) if x.ndim == 2 else np.where(a_wins, x, y)

        fields = ("ids", "mask", "response_mask")
        chosen = SequenceBatch(*(pick(getattr(a, f), getattr(b, f)) for f in fields))
        rejected = SequenceBatch(*(pick(getattr(b, f), getattr(a, f)) for f in fields))
        return PreferencePairs(
            prompts, chosen, rejected, pick(r_a, r_b), pick(r_b, r_a), pick(p_a, 1.0 - p_a)
        )
