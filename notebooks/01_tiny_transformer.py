# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · A tiny transformer: attention, log-probs, pre-training and sampling
#
# Every alignment method in minialign changes one object: a small GPT that assigns a
# probability to each next token. This notebook takes that model apart before we start
# aligning it. You will compute causal attention by hand and see why a token can never
# look ahead; follow a batch through `TinyGPT` one shape at a time; compute the
# sequence log-probability $\log \pi(y \mid x)$ that PPO, GRPO and DPO all consume, and
# check that padding cannot change it; pre-train the model on the toy sentiment corpus;
# and sample from it at different temperatures.
#
# Everything is seeded. **Runtime: about 10 seconds on a laptop CPU** (the pre-training
# run takes 2-5 s of it).
#
# 1. Scaled dot-product attention and the causal mask
# 2. The GPT forward pass, shape by shape
# 3. Sequence log-probabilities, and why padding cannot change them
# 4. Pre-training on the toy sentiment corpus
# 5. Sampling with temperature
# 6. Try this
# 7. Recap
#
# ## Notation
#
# | Symbol | Meaning in this notebook | In code |
# |---|---|---|
# | $Q, K, V$; $d$ | queries, keys, values of $T$ positions, rows of width $d$ (section 1) | `Q`, `K`, `V`, `d` |
# | $M$ | the causal mask: $0$ on and below the diagonal, $-\infty$ above | `M` |
# | $B, T, C$ | batch size, positions, embedding width | `B`, `T`, `cfg.n_embd` |
# | $n_h$, $h_s$ | attention heads, and the size of each, $h_s = C/n_h$ | `nh`, `hs` |
# | $V$ | vocabulary size (section 2 on) | `tok.vocab_size` |
# | $W_{te}$, $W_{pe}$ | token and position embeddings; $W_{te}^\top$ is also the output layer | `ref.wte`, `ref.wpe` |
# | $x^{(\ell)}$ | the hidden states after block $\ell$ (section 2) | `x` |
# | $x$, $y = (y_1, \dots, y_L)$ | a prompt; a response of $L$ tokens (section 3 on) | `prompts`, `tokens` |
# | $\pi_\theta(y\mid x)$ | the model's probability of a response; $\log\pi$ sums its tokens' log-probs | `sequence_logprobs` |
# | $m_{n,t}$ | 1 for a real target token, 0 for padding | `mask`, `response_mask` |
# | $z$, $\tau$ | next-token logits; the **sampling** temperature that divides them | `z`, `temperature` |
#
# Within this notebook $V$ means two things: the value matrix of section 1 and the vocabulary
# size from section 2 on (notebook 03 adds a third, the value function $V_w$), and $K$ is the
# key matrix here but the number of answers in notebook 07.
#
# **Same letter, different meaning.** Two symbols are overloaded across the notebooks; the
# table says which is which.
#
# | Symbol | Meaning | Where | In code |
# |---|---|---|---|
# | $\tau$ | sampling temperature (divides the logits) | 01 | `temperature` |
# | $\tau_i$ | the reasoning trace of output $i$ | 04 | |
# | $\tau$ | DPO temperature, $=1/\beta$ of the DPO paper | 05, 07 | `tau` |
# | $\beta$ | KL coefficient of $J(\theta) = \mathbb{E}[r] - \beta\,\mathrm{KL}$ | 03, 06, 07 | `PPOConfig.beta` (TRL: `kl_coef`), `beta` |
# | $\beta_{BT}$ | annotator reliability, $P(y_1 \succ y_2) = \sigma(\beta_{BT}(r_1 - r_2))$ | 02, 05, 07 | `beta_bt` |
# | $\beta$ | DPO's $\beta = 1/\tau$, the KL coefficient DPO optimises implicitly | 05 | TRL's `DPOConfig.beta` |
# | $\beta$ | GRPO's weight on the $k_3$ KL estimator *in the loss* | 04 | `GRPOConfig.beta` |
# | $\beta$ | a coefficient of Gao et al.'s over-optimisation law $d(\alpha - \beta d)$ | 06 | |
# | $\beta_1, \beta_2$ | Adam's decay rates of its moment estimates | 05 | `AdamW(betas=...)` |
#
# The $\tau$ of this notebook is the first row: it changes how we *sample*, not what the
# model has learnt.

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import TqdmWarning

# tqdm.auto warns at import when ipywidgets is missing; bars fall back to text (and we hide them)
warnings.filterwarnings("ignore", category=TqdmWarning)

import minialign as ma
import minialign.functional as F
from minialign.nn import GPTConfig, TinyGPT, generate, sequence_logprobs
from minialign.plots import decorate, panels, plot_curves, plot_histograms, plot_history
from minialign.pretrained import load_reference, make_task
from minialign.train import SFTConfig, evaluate_loss, train_sft, unigram_entropy

# Our matrices are tiny (32 wide): one BLAS thread is several times faster than many
# threads fighting over them, and it makes every sum happen in the same order.
threadpool_limits(1, "blas")
ma.seed(0)
np.set_printoptions(precision=4, suppress=True, linewidth=100)

# %% [markdown]
# ## 1. Scaled dot-product attention and the causal mask
#
# Each position $i$ of a sequence emits a query $q_i$, a key $k_i$ and a value $v_i$
# (rows of $Q, K, V \in \mathbb{R}^{T \times d}$). Position $i$ scores every key by a dot
# product, turns the scores into weights with a softmax, and returns the weighted average
# of the values:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\Big(\frac{Q K^\top}{\sqrt{d}} + M\Big)\, V,
#   \qquad M_{ij} = \begin{cases} 0 & j \le i \\ -\infty & j > i \end{cases}$$
#
# The division by $\sqrt d$ keeps the scores of order 1 however wide the head is (a dot
# product of $d$ unit-variance terms has variance $d$). The **causal mask** $M$ adds
# $-\infty$ to every score of a key in the future, so after the softmax its weight is
# exactly $e^{-\infty} = 0$. A language model is trained to predict token $i+1$ from
# position $i$; if position $i$ could see token $i+1$ the task would be trivial.
#
# **By hand**, on $T = 4$ positions with $d = 2$:

# %%
Q = np.array([[1.0, 0.0], [0.5, 1.0], [-1.0, 0.5], [0.0, -1.0]])  # (T, d)
K = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, -1.0], [-0.5, 0.5]])  # (T, d)
V = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 2.0]])  # (T, d)
T, d = Q.shape

M = np.where(np.arange(T)[None, :] > np.arange(T)[:, None], -np.inf, 0.0)  # (T, T): key j > query i
print("causal mask M:\n", M)

scores = Q @ K.T / np.sqrt(d) + M  # (T, T)
weights = np.exp(scores - scores.max(axis=1, keepdims=True))  # exp(-inf) = 0 exactly
weights /= weights.sum(axis=1, keepdims=True)  # each row sums to 1
out_by_hand = weights @ V  # (T, d)
print("attention weights (row i = query i):\n", weights)
print("output:\n", out_by_hand)

# %% [markdown]
# The weights are lower-triangular: row $i$ spreads its attention over positions
# $0, \dots, i$ only. Row 0 can only attend to itself, so its output is $v_0$ exactly.
#
# **Through minialign.** `F.causal_attention(q, k, v)` is the same computation as one
# fused graph node with a hand-derived backward pass (its docstring derives it). It takes
# any leading axes, usually (batch, heads, T, head size):

# %%
out = F.causal_attention(Q, K, V)
print(out)
np.testing.assert_allclose(out.data, out_by_hand, rtol=1e-12)
np.testing.assert_allclose(out_by_hand[0], V[0])  # position 0 sees only itself

# %% [markdown]
# **The future cannot leak backwards.** Change everything about the last token (its
# query, key and value) and recompute. Outputs 0-2 do not move by a single bit; only
# output 3 changes. This is what lets us train on all positions of a sequence at once:
# one forward pass gives $T$ honest next-token predictions.

# %%
Q2, K2, V2 = Q.copy(), K.copy(), V.copy()
Q2[3], K2[3], V2[3] = [5.0, 5.0], [-3.0, 4.0], [10.0, -10.0]  # a completely different token 3
out2 = F.causal_attention(Q2, K2, V2).data
print("change in each output row:", np.abs(out2 - out.data).max(axis=1))
assert np.array_equal(out2[:3], out.data[:3])  # earlier positions: bitwise identical
assert not np.allclose(out2[3], out.data[3])

# %% [markdown]
# ## 2. The GPT forward pass, shape by shape
#
# `TinyGPT` is GPT-2 in miniature. We load the **shipped reference model** for the
# sentiment task (section 4 shows how it was made) and push a batch of $B = 2$ reviews
# through it by hand, printing the shape at every stage. The letters: $B$ batch, $T$
# positions, $C$ embedding width, $n_h$ heads of size $h_s = C / n_h$, $V$ vocabulary.
#
# $$x^{(0)} = W_{te}[\text{idx}] + W_{pe}[0{:}T], \quad
#   x^{(\ell)} = \mathrm{Block}_\ell(x^{(\ell-1)}), \quad
#   h = \mathrm{LN}_f(x^{(L)}), \quad \text{logits} = h\, W_{te}^\top$$
#
# The last step is the **tied LM head**: the output layer reuses the token embedding
# matrix, so "which vector means *great*" is the same on the way in and on the way out.

# %%
task = make_task("sentiment")
tok = task.tokenizer
ref = load_reference("sentiment")
print(ref.config)
print(f"{sum(p.size for p in ref.parameters()):,} parameters")

idx = np.array(
    tok.encode_batch(
        ["the movie was very good and the cast is funny", "the plot is dull"],
        pad_to=12,
        add_bos=True,
        add_end=True,
    )[0]
)  # (B, T) token ids, right-padded with PAD
print("idx", idx.shape, "\n", idx)

# %%
cfg = ref.config
B, T = idx.shape
nh, hs = cfg.n_head, cfg.n_embd // cfg.n_head
with ma.no_grad():
    tok_emb = ref.wte(idx)  # (B, T, C): one learned vector per token id
    pos_emb = ref.wpe.weight[:T]  # (T, C): one learned vector per position
    x = tok_emb + pos_emb  # (B, T, C) + (T, C) broadcasts over the batch
    print(f"token embeddings     {tok_emb.shape}")
    print(f"position embeddings  {pos_emb.shape}")
    print(f"x = sum              {x.shape}")
    for layer, block in enumerate(ref.blocks):
        qkv = block.attn.qkv(block.ln1(x))  # (B, T, 3C): queries, keys, values of all heads
        heads = qkv.reshape(B, T, 3, nh, hs).transpose(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
        attn = F.causal_attention(heads[0], heads[1], heads[2])  # (B, nh, T, hs)
        merged = attn.transpose(0, 2, 1, 3).reshape(B, T, cfg.n_embd)  # (B, T, C)
        x_mid = x + block.attn.proj(merged)  # residual: x + attention(LN(x))
        hidden = block.mlp.fc(block.ln2(x_mid))  # (B, T, 4C)
        x_next = x_mid + block.mlp.proj(F.gelu(hidden))  # residual: x + MLP(LN(x))
        print(
            f"block {layer}: qkv {qkv.shape} -> heads {heads.shape[1:]} x 3 -> attention "
            f"{attn.shape} -> merged {merged.shape}; MLP hidden {hidden.shape} -> {x_next.shape}"
        )
        np.testing.assert_allclose(x_next.data, block(x).data, rtol=1e-5, atol=1e-6)
        x = x_next
    h = ref.ln_f(x)  # (B, T, C)
    logits_by_hand = h @ ref.wte.weight.T  # (B, T, C) @ (C, V) -> (B, T, V)
    print(f"final LayerNorm      {h.shape}")
    print(f"logits = h W_te^T    {logits_by_hand.shape}")
    logits = ref(idx)
np.testing.assert_allclose(logits_by_hand.data, logits.data, rtol=1e-5, atol=1e-5)

# %% [markdown]
# The same causality, now through the whole network: replace token 6 of the first review
# by something else and only the logits at positions $\ge 6$ change.

# %%
idx_changed = idx.copy()
idx_changed[0, 6] = tok.token_to_id["awful"]
with ma.no_grad():
    changed = ref(idx_changed).data
moved = np.abs(changed - logits.data).max(axis=-1)[0]  # (T,) per position, first review
print("largest logit change at each position:", moved)
assert np.all(moved[:6] == 0) and np.all(moved[6:] > 0)

# %% [markdown]
# ## 3. Sequence log-probabilities, and why padding cannot change them
#
# A sequence is a prompt $x$ followed by a response $y = (y_1, \dots, y_L)$. The model
# factorises the probability of the response token by token:
#
# $$\log \pi_\theta(y \mid x) = \sum_{t=1}^{L} \log \pi_\theta(y_t \mid x, y_{<t}).$$
#
# Each term is one entry of a log-softmax over the vocabulary, read off at the token that
# actually came next. Only **response** tokens count: the prompt was given, not generated.
#
# **The $(B, T-1)$ layout.** Feed `tokens[:, :-1]` to the model; the logits at column $t$
# predict `tokens[:, t+1]`. So every per-token array has $T-1$ columns, and **column $t$
# scores token $t+1$**. The score is kept where `response_mask[:, t+1]` is 1. `generate`
# returns its log-probs in the same layout, so the two can be compared entry by entry.
#
# **By hand** on three sequences from the corpus (`BOS prompt response END PAD...`):

# %%
batch = task.corpus(3, np.random.default_rng(7))
tokens, response_mask = batch.ids, batch.response_mask  # (B, T) each
print(tokens.shape, "\n", tokens)

with ma.no_grad():
    logits = ref(tokens[:, :-1]).data  # (B, T-1, V): column t predicts token t+1
    log_probs = F.log_softmax(logits, axis=-1).data  # (B, T-1, V)
targets = tokens[:, 1:]  # (B, T-1)
picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]  # (B, T-1) gather
per_token_by_hand = np.where(response_mask[:, 1:], picked, 0.0)  # response tokens only
total_by_hand = per_token_by_hand.sum(axis=1)  # (B,) log pi(y | x)

print(f"{'t':>2} {'input token t':<14} {'target t+1':<12} {'resp?':>5} {'log-prob':>9}")
for t in range(tokens.shape[1] - 1):
    print(
        f"{t:>2} {tok.tokens[tokens[0, t]]:<14} {tok.tokens[tokens[0, t + 1]]:<12} "
        f"{int(response_mask[0, t + 1]):>5} {per_token_by_hand[0, t]:>9.4f}"
    )
print("log pi(y | x) per sequence:", total_by_hand)

# %% [markdown]
# **Through minialign:** `sequence_logprobs(model, tokens, response_mask)` returns both
# arrays as Tensors that carry gradient back to the model (the objectives need that).

# %%
lp = sequence_logprobs(ref, tokens, response_mask)
print("per_token", lp.per_token.shape, " total", lp.total.shape, lp.total.data)
np.testing.assert_allclose(lp.per_token.data, per_token_by_hand, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(lp.total.data, total_by_hand, rtol=1e-5)

# %% [markdown]
# **Padding cannot change it**, for two reasons that section 1 and 2 already showed:
# padded positions come *after* the real ones, so causal attention hides them from every
# real position; and their mask is 0, so their own scores are dropped. To prove it, cut
# the batch down to its longest real sequence, and separately fill every padded slot
# with random junk tokens: the log-probs do not move.

# %%
longest = int(batch.mask.sum(axis=1).max())
trimmed = sequence_logprobs(ref, tokens[:, :longest], response_mask[:, :longest]).total.data
junk = tokens.copy()
pads = ~batch.mask  # (B, T) True at padding
junk[pads] = np.random.default_rng(1).integers(0, tok.vocab_size, size=pads.sum())
junk_total = sequence_logprobs(ref, junk, response_mask).total.data
print("padded to 16:", lp.total.data, "\ntrimmed:     ", trimmed, "\njunk in pads:", junk_total)
np.testing.assert_allclose(trimmed, lp.total.data, rtol=1e-6)
np.testing.assert_allclose(junk_total, lp.total.data, rtol=1e-6)

# %% [markdown]
# ## 4. Pre-training on the toy sentiment corpus
#
# The reference model learned its language from a generated corpus of short movie
# reviews. Each review's mood is random, so the corpus is neutral on average: positive,
# negative and mixed continuations are all common. That is the starting point every
# alignment method will try to push towards positive reviews.

# %%
corpus = task.corpus(4000, np.random.default_rng(0))
held_out = task.corpus(500, np.random.default_rng(123))
for row, m in zip(corpus.ids[:5], corpus.mask[:5]):
    print(tok.decode(row[m]))

# %% [markdown]
# Pre-training minimises the next-token cross-entropy over every real target token
# (mask $m$ = 1), with AdamW, warm-up then cosine decay, and gradient clipping
# (`train_sft`'s docstring lists each choice):
#
# $$\mathcal L(\theta) = -\frac{1}{\sum_{n,t} m_{n,t}} \sum_{n,t \ge 1} m_{n,t}
#   \log p_\theta(x_{n,t} \mid x_{n,<t})$$
#
# Two yardsticks. The **unigram entropy** $H = -\sum_v \hat p_v \log \hat p_v$ of the
# token frequencies is the loss of the best model that ignores context: anything that
# learned grammar must go below it. The **shipped reference** was trained with the same
# recipe (the sizes below), so a fresh run should end close to its held-out loss. We
# train a fresh model from random weights for 800 steps (a few seconds):

# %%
model = TinyGPT(
    GPTConfig(
        vocab_size=tok.vocab_size, block_size=task.block_size, n_layer=2, n_head=2, n_embd=32
    ),
    rng=0,
)
history = train_sft(
    model,
    corpus.ids,
    corpus.mask,
    SFTConfig(steps=800, batch_size=32, learning_rate=3e-3),
    rng=np.random.default_rng(0),
    eval_tokens=held_out.ids,
    eval_mask=held_out.mask,
    progress=False,
)
unigram = unigram_entropy(held_out.ids[:, 1:], held_out.mask[:, 1:])  # targets only
ours = evaluate_loss(model, held_out.ids, held_out.mask)
shipped = evaluate_loss(ref, held_out.ids, held_out.mask)
print(f"uniform guess log V   {np.log(tok.vocab_size):.3f} nats")
print(f"unigram entropy       {unigram:.3f} nats")
print(f"our model, held out   {ours:.3f} nats")
print(f"shipped reference     {shipped:.3f} nats")
assert ours < 0.6 * unigram and abs(ours - shipped) < 0.1

# %%
ax = plot_history(history, "loss", smooth=20)  # training batches: noisy, so smoothed
plot_history(history, "eval_loss", ax=ax, title="Pre-training TinyGPT on the sentiment corpus",
             ylabel="cross-entropy (nats per token)")
decorate(ax, hlines={f"unigram entropy {unigram:.2f}": unigram,
                     f"shipped reference {shipped:.2f}": shipped})
plt.show()

# %% [markdown]
# The loss starts at $\log V \approx 4.06$ (random weights guess uniformly), drops below
# the unigram line within the first hundred steps, and levels off at the shipped reference's
# held-out loss (the dotted line; the cell above asserts they agree). It cannot go to zero: the corpus itself is random (which adjective, which noun, when to stop), so
# the floor is the entropy of the generator, not 0. Held-out and training loss agree:
# 800 steps of 32 reviews is about 6 passes over this corpus, and the model is too small
# to memorise it.

# %% [markdown]
# ## 5. Sampling with temperature
#
# To generate, the model reads the prompt, turns the logits $z$ at the last position into
# a distribution, draws a token, appends it, and repeats until it draws END. The
# **temperature** $\tau$ divides the logits first:
#
# $$\pi_\tau(v \mid \text{context}) = \frac{e^{z_v / \tau}}{\sum_{u} e^{z_u / \tau}}$$
#
# $\tau < 1$ sharpens the distribution towards the most likely token ($\tau \to 0$ is
# greedy decoding), $\tau > 1$ flattens it towards uniform. Here is one real next-token
# distribution, after the prompt "the movie was":

# %%
prompt = np.array([tok.encode("the movie was", add_bos=True)])  # (1, 4)
with ma.no_grad():
    z = ref(prompt).data[0, -1]  # (V,) logits for the next token
for temp in [0.5, 1.0, 2.0]:
    p = np.exp(z / temp - np.max(z / temp))
    p /= p.sum()
    top = np.argsort(p)[::-1][:5]
    entropy = -(p * np.log(p)).sum()
    print(
        f"tau = {temp}: entropy {entropy:.2f} nats; top 5:",
        ", ".join(f"{tok.tokens[i]} {p[i]:.2f}" for i in top),
    )

# %% [markdown]
# `generate` does this for a whole batch of prompts with an explicit random generator.
# Samples from the reference at three temperatures (the same prompts and seed):

# %%
prompts = task.sample_prompts(1000, np.random.default_rng(0))  # (1000, 4)
gens = {}
for temp in [0.5, 1.0, 2.0]:
    gens[temp] = generate(
        ref,
        prompts,
        max_new_tokens=task.max_words + 1,
        temperature=temp,
        rng=np.random.default_rng(1),
        stop_token=tok.end_id,
        pad_id=tok.pad_id,
    )
    texts = tok.decode_batch(gens[temp].tokens)
    print(f"tau = {temp}:")
    for text in texts[:4]:
        print("   ", text)

# %% [markdown]
# At $\tau = 2$ grammar starts to break in some samples, and reviews that never stop
# appear. To measure it, for a sweep of temperatures we record: the
# mean entropy of the next-token distribution the samples were drawn from; how plausible
# the samples are to the model itself at $\tau = 1$ (mean $\log \pi(y_t \mid \cdot)$ per
# token); the fraction of distinct reviews; and the **true reward** of each review, which
# the task knows exactly (the mean valence of its words, minus a penalty for repeating
# adjectives).


# %%
def sample_stats(temp, n=1000):
    gen = generate(
        ref,
        prompts[:n],
        max_new_tokens=task.max_words + 1,
        temperature=temp,
        rng=np.random.default_rng(1),
        stop_token=tok.end_id,
        pad_id=tok.pad_id,
    )
    with ma.no_grad():
        scaled = F.log_softmax(ref(gen.tokens[:, :-1]).data / temp).data  # (B, T-1, V)
    resp = gen.response_mask[:, 1:]  # (B, T-1) the sampled positions
    entropy = -(np.exp(scaled) * scaled).sum(-1)  # (B, T-1)
    plausibility = sequence_logprobs(ref, gen.tokens, gen.response_mask).per_token.data
    texts = tok.decode_batch(gen.tokens)
    return {
        "entropy": (entropy * resp).sum() / resp.sum(),
        "logp_at_1": plausibility.sum() / resp.sum(),
        "distinct": len(set(texts)) / len(texts),
        "stopped": np.mean([tok.end_id in row[m] for row, m in zip(gen.tokens, gen.response_mask)]),
        "reward": task.true_reward(gen.tokens, gen.response_mask),
    }


temps = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
stats = {temp: sample_stats(temp) for temp in temps}
print(f"{'tau':>5} {'entropy':>8} {'logp@1':>7} {'distinct':>8} {'stopped':>8} {'reward':>15}")
for temp, s in stats.items():
    r = s["reward"]
    print(
        f"{temp:>5} {s['entropy']:>8.3f} {s['logp_at_1']:>7.3f} {s['distinct']:>8.3f} "
        f"{s['stopped']:>8.3f} {r.mean():>7.3f} ± {r.std():.3f}"
    )
column = {key: np.array([stats[t][key] for t in temps]) for key in ("entropy", "logp_at_1")}
assert np.all(np.diff(column["entropy"]) > 0)  # entropy rises with tau ...
assert column["logp_at_1"][-1] < column["logp_at_1"][temps.index(1.0)] - 1  # samples less plausible
assert stats[3.0]["stopped"] < 0.9  # many hot samples never draw END
assert all(abs(s["reward"].mean()) < 0.05 for s in stats.values())  # the mean barely moves
assert stats[2.0]["reward"].std() > stats[0.5]["reward"].std() + 0.05  # ... but it widens
assert all(s["distinct"] > 0.9 for s in stats.values())

# %%
fig, (ax_ent, ax_rew) = panels(2)
plot_curves({r"entropy of $\pi_\tau$": (temps, column["entropy"]),
             r"$-\log \pi_1(y_t)$ of the samples": (temps, -column["logp_at_1"])}, ax_ent,
            style="o-", title="Temperature trades plausibility for diversity",
            xlabel=r"sampling temperature $\tau$", ylabel="nats per response token")
plot_histograms({rf"$\tau$ = {t}": stats[t]["reward"] for t in (0.5, 1.0, 2.0)},
                np.linspace(-1, 1, 21), ax_rew, step=True,
                title="True reward of 1000 samples from the reference",
                xlabel="true reward r(x, y)", ylabel="number of samples")
fig.tight_layout()

# %% [markdown]
# What to take from it:
#
# - **Entropy rises with $\tau$** (the first column of the table), and the samples become
#   *less* plausible to the model itself: $-\log \pi_1$ of what was drawn grows. Past
#   $\tau \approx 2$ it produces text the corpus never contained, and at $\tau = 3$ a
#   sizeable share of the reviews never draw END (the "stopped" column).
# - **The reward distribution widens but its mean barely moves.** The reference is
#   neutral, so temperature alone cannot make it positive; at low $\tau$ it still picks
#   positive and negative words equally often. Changing the *mean* is the job of
#   alignment (notebooks 02-06). At high $\tau$ the mean even drops a little: repeated
#   adjectives are penalised.
# - The "distinct" fraction hardly changes: this corpus is already very varied at
#   $\tau = 1$, so almost every review is new at any temperature.
#
# **Two implementation details that RL depends on.**
#
# *The log-probs that `generate` returns are the ones `sequence_logprobs` recomputes.*
# `generate` records $\log \pi_\tau(y_t \mid \cdot)$ of each sampled token, in the same
# $(B, T-1)$ layout as section 3. PPO stores them as $\log \pi_{\theta_\text{old}}$ and later
# recomputes them with gradient; at the first step the two must agree, or the
# probability ratio is not 1 when it should be. They agree only if the recomputation uses
# the **same temperature** (and no top-$k$ truncation, see `generate`'s docstring):

# %%
for temp, gen in gens.items():
    recomputed = sequence_logprobs(ref, gen.tokens, gen.response_mask, temperature=temp)
    gap = np.abs(recomputed.per_token.data - gen.logprobs).max()
    print(f"tau = {temp}: max |generate - sequence_logprobs| = {gap:.1e}")
    np.testing.assert_allclose(recomputed.per_token.data, gen.logprobs, atol=2e-5)
wrong = sequence_logprobs(ref, gens[2.0].tokens, gens[2.0].response_mask, temperature=1.0)
off_by = np.abs(wrong.per_token.data - gens[2.0].logprobs).max()
print(f"tau = 2 samples scored at tau = 1 instead: off by up to {off_by:.2f} nats per token")

# %% [markdown]
# *The KV cache.* Drawing token $t+1$ needs the keys and values of positions $0..t$ in
# every layer. Without a cache each step re-runs the model over the whole prefix; with
# `KVCache` (`use_cache=True`, the default) each step computes only the new position and
# appends its keys and values to buffers, and the new query attends to all of them. That
# is section 1's attention with one query and many keys (`F.causal_attention` accepts
# $T_q \le T_k$). The samples are identical either way:

# %%
kwargs = dict(max_new_tokens=task.max_words + 1, stop_token=tok.end_id, pad_id=tok.pad_id)
seconds = {}
for use_cache in (True, False):
    t0 = time.perf_counter()
    g = generate(ref, prompts, rng=np.random.default_rng(1), use_cache=use_cache, **kwargs)
    seconds[use_cache] = time.perf_counter() - t0
    assert np.array_equal(g.tokens, gens[1.0].tokens)
P, steps = prompts.shape[1], g.tokens.shape[1] - prompts.shape[1]  # prompt length, tokens drawn
with_cache = P + (steps - 1)  # the prompt once, then one new position per step
without = P + sum(range(P + 1, P + steps))  # the whole prefix again at every step
print(f"{steps} tokens drawn per row; positions run through the model per row:")
print(f"  with the cache {with_cache}, without {without} ({without / with_cache:.1f}x the work)")
speedup = seconds[False] / seconds[True]
print(f"  wall clock for 1000 rows: the cache is {'more than 2x' if speedup > 2 else 'not 2x'} faster")
assert speedup > 2  # measured 5-7x on a quiet 2-core machine; the exact ratio varies run to run

# %% [markdown]
# The work without a cache grows with the square of the length, with it linearly: even at
# 16 positions the cache saves several times the work (the ratio printed above); the wall
# clock, printed too, shows the saving in practice.
#
# ## 6. Try this
#
# Write the attention of the **KV-cache step** by hand: a single query, the last row
# `Q[-1:]` of section 1, attending to all four keys. It needs no mask at all. Why?
# Check that it equals the last row of `out_by_hand`, and that
# `F.causal_attention(Q[-1:], K, V)` agrees (queries are the *last* $T_q$ positions).
#
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# The one query sits at the last position, so every key is in its past or present:
# nothing to hide.
#
# ```python
# q_last = Q[-1:]  # (1, d)
# s = q_last @ K.T / np.sqrt(d)  # (1, T), no mask needed
# w = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
# cached = w @ V  # (1, d)
# np.testing.assert_allclose(cached, out_by_hand[-1:], rtol=1e-12)
# np.testing.assert_allclose(F.causal_attention(q_last, K, V).data, cached, rtol=1e-12)
# ```
#
# </details>
#
# ## 7. Recap
#
# | | Equation |
# |---|---|
# | causal attention | $\mathrm{softmax}\big(QK^\top/\sqrt d + M\big)\,V$, $\;M_{ij} = -\infty$ for $j > i$ |
# | the forward pass | $x^{(0)} = W_{te}[\text{idx}] + W_{pe}[0{:}T]$, $\;x^{(\ell)} = \mathrm{Block}_\ell(x^{(\ell-1)})$, $\;\text{logits} = \mathrm{LN}_f(x^{(L)})\,W_{te}^\top$ |
# | sequence log-probability | $\log\pi_\theta(y\mid x) = \sum_{t=1}^{L}\log\pi_\theta(y_t\mid x, y_{<t})$, response tokens only |
# | pre-training loss | $\mathcal L(\theta) = -\frac{1}{\sum m}\sum_{n,t} m_{n,t}\log p_\theta(x_{n,t}\mid x_{n,<t})$ |
# | sampling temperature | $\pi_\tau(v\mid\cdot) = e^{z_v/\tau}/\sum_u e^{z_u/\tau}$ |
#
# What to remember:
#
# 1. **The causal mask** hides the future exactly (the earlier outputs do not change by a bit),
#    so one forward pass gives $T$ honest next-token predictions. (Sections 1–2.)
# 2. **Column $t$ scores token $t+1$**: per-token arrays have $T-1$ columns, only response
#    tokens count, and padding cannot change $\log\pi(y\mid x)$. (Section 3.)
# 3. **The loss floor is the corpus's own entropy**, not 0; a fresh run ends at the shipped
#    reference's held-out loss. (Section 4.)
# 4. **Temperature widens the reward distribution but hardly moves its mean**: making the
#    model *better* is alignment's job (notebooks 02–07). (Section 5.)
# 5. **Score samples at the temperature they were drawn at**, or the PPO ratio is not 1 when it
#    should be; the KV cache changes the work, not the samples. (Section 5.)
