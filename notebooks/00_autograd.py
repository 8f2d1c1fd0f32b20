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
# # 00 · Autograd: from one number to a tensor
#
# Every alignment objective in minialign (reward modelling, PPO, GRPO, DPO) ends in
# `loss.backward()`. This notebook builds the machine behind that call twice: first a
# scalar `Value` written right here (in the spirit of micrograd), then minialign's
# `Tensor`, which does the same job for whole arrays.
#
# Each equation appears three times: in LaTeX, in NumPy on concrete numbers, and through
# the library, followed by an `assert` that the two agree. Everything is seeded; the
# notebook runs top to bottom in a few seconds on a laptop CPU.
#
# 1. The chain rule on concrete numbers
# 2. The graph, and why a topological sort
# 3. Why gradients accumulate
# 4. From scalars to tensors: matmul
# 5. Undoing broadcasting
# 6. Fused ops: softmax, log-softmax, and stability
# 7. Gradient checking, and why a random upstream gradient
# 8. Training a tiny MLP
# 9. Catching a NaN with `detect_anomaly`
# 10. Try this
# 11. Recap

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

import minialign as ma
import minialign.functional as F
from minialign.autograd import engine
from minialign.gradcheck import GradcheckError, gradcheck

ma.seed(0)
rng = np.random.default_rng(0)
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. The chain rule on concrete numbers
#
# Take one tiny neuron, $y = \tanh(u)$ with $u = a b + c$, at $a = 2$, $b = -0.5$, $c = 0.8$.
# The chain rule multiplies the local derivatives along the path from $a$ to $y$:
#
# $$\frac{\partial y}{\partial a} = \frac{\partial y}{\partial u}\,\frac{\partial u}{\partial a}
#   = \big(1 - \tanh^2 u\big)\, b, \qquad
#   \frac{\partial y}{\partial b} = \big(1 - \tanh^2 u\big)\, a, \qquad
#   \frac{\partial y}{\partial c} = 1 - \tanh^2 u .$$
#
# **By hand:**

# %%
a, b, c = 2.0, -0.5, 0.8
u = a * b + c
y = math.tanh(u)
dy_du = 1 - y**2
by_hand = {"a": dy_du * b, "b": dy_du * a, "c": dy_du}
print(f"u = {u:.4f}, y = {y:.6f}")
print("by hand:", {k: round(v, 6) for k, v in by_hand.items()})

# %% [markdown]
# **Numerically**, with a central difference: nudge one input up and down by $h$ and watch
# the output,
#
# $$\frac{\partial y}{\partial a} \approx \frac{y(a + h) - y(a - h)}{2h},$$
#
# whose error shrinks like $h^2$.


# %%
def neuron(a, b, c):
    return math.tanh(a * b + c)


h = 1e-6
inputs = {"a": a, "b": b, "c": c}
numeric = {}
for name in inputs:
    up, down = dict(inputs), dict(inputs)
    up[name] += h
    down[name] -= h
    numeric[name] = (neuron(**up) - neuron(**down)) / (2 * h)
print("numeric:", {k: round(v, 6) for k, v in numeric.items()})
for name in inputs:
    assert math.isclose(numeric[name], by_hand[name], rel_tol=1e-6), name

# %% [markdown]
# **By a `Value`.** Now let the computer apply the chain rule. A `Value` holds a number, the
# `Value`s it was made from, and a small closure `_backward` that knows the *local*
# derivative of its own operation. Calling `backward()` on the output runs those closures
# from the output back to the inputs, each one adding
# $\text{(gradient of the output)} \times \text{(local derivative)}$ into its inputs' `.grad`.
#
# | op | forward | what `_backward` adds to each input |
# |---|---|---|
# | $z = x + w$ | `x.data + w.data` | $\bar x \mathrel{+}= \bar z$, $\bar w \mathrel{+}= \bar z$ |
# | $z = x w$ | `x.data * w.data` | $\bar x \mathrel{+}= \bar z\, w$, $\bar w \mathrel{+}= \bar z\, x$ |
# | $z = \tanh x$ | `math.tanh(x.data)` | $\bar x \mathrel{+}= \bar z\,(1 - z^2)$ |
# | $z = e^x$ | `math.exp(x.data)` | $\bar x \mathrel{+}= \bar z\, z$ |
#
# (A bar means "gradient of the final output with respect to this": $\bar x = \partial y / \partial x$.)


# %%
def topological_order(root):
    """Every Value that `root` depends on, each after all of its parents.

    Iterative depth-first search with an explicit stack: a node is pushed back with
    `done=True` and emitted only once every parent has been emitted.
    """
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif id(node) not in visited:
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in reversed(node._parents) if id(p) not in visited)
    return order


class Value:
    """A number that remembers how it was computed."""

    def __init__(self, data, parents=(), op="", label=""):
        self.data = float(data)
        self.grad = 0.0
        self._parents = parents
        self._op = op
        self._backward = lambda: None
        self.label = label

    def __repr__(self):
        return f"Value({self.label or self._op}: data={self.data:.4f}, grad={self.grad:.4f})"

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += out.grad * other.data
            other.grad += out.grad * self.data

        out._backward = _backward
        return out

    __radd__ = __add__
    __rmul__ = __mul__

    def tanh(self):
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += out.grad * (1 - out.data**2)

        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.grad * out.data

        out._backward = _backward
        return out

    def backward(self):
        order = topological_order(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0  # dy/dy
        for node in reversed(order):
            node._backward()


# %%
va, vb, vc = Value(a, label="a"), Value(b, label="b"), Value(c, label="c")
vab = va * vb
vab.label = "a*b"
vu = vab + vc
vu.label = "u"
vy = vu.tanh()
vy.label = "y"
vy.backward()
by_value = {"a": va.grad, "b": vb.grad, "c": vc.grad}
print("Value:  ", {k: round(v, 6) for k, v in by_value.items()})
for name in inputs:
    assert math.isclose(by_value[name], by_hand[name], rel_tol=1e-12), name
print("hand, central differences and Value agree")

# %% [markdown]
# ## 2. The graph, and why a topological sort
#
# `backward()` may run a node's closure only once that node's own gradient is complete,
# that is, after every node that *uses* it has passed its share back. Listing the nodes so
# that each comes after its parents (a topological order) and walking the list in reverse
# guarantees exactly that. Here is the order for our neuron, drawn as a table, with the
# gradients that the reverse walk filled in:

# %%
order = topological_order(vy)
print(f"{'step':>4}  {'node':<5} {'op':<5} {'parents':<10} {'data':>8} {'grad':>8}")
for step, node in enumerate(order):
    parents = ", ".join(p.label for p in node._parents)
    print(
        f"{step:>4}  {node.label:<5} {node._op or 'leaf':<5} {parents:<10} "
        f"{node.data:>8.4f} {node.grad:>8.4f}"
    )
print("backward visits:", " -> ".join(n.label for n in reversed(order)))

# %% [markdown]
# micrograd builds the same list with a *recursive* helper. That is the shortest way to
# write it, but each level of the graph costs one Python stack frame, and Python stops at
# about 1,000 frames. A language model's graph is easily deeper than that once you count
# every op in every layer and every token (micrograd issue #90 reports exactly this).
# The sort above keeps its own stack, so depth costs memory, not recursion.


# %%
def topological_order_recursive(root):
    """micrograd's version: correct, but one Python stack frame per level of depth."""
    order, visited = [], set()

    def visit(node):
        if id(node) not in visited:
            visited.add(id(node))
            for p in node._parents:
                visit(p)
            order.append(node)

    visit(root)
    return order


x0 = Value(0.5, label="x0")
z = x0
for _ in range(10_000):  # a chain 10,000 ops deep: z = (((x0 * 1.0001) * 1.0001) ...)
    z = z * 1.0001
z.backward()
expected = 1.0001**10_000
print(f"10,000-op chain: dz/dx0 = {x0.grad:.6f}, closed form 1.0001^10000 = {expected:.6f}")
assert math.isclose(x0.grad, expected, rel_tol=1e-9)

try:
    topological_order_recursive(z)
except RecursionError as err:
    print(f"recursive sort on the same chain: RecursionError ({err})")
else:
    raise AssertionError("expected a RecursionError")

# %% [markdown]
# minialign's engine uses the iterative sort too (`engine.topological_order`), so a
# 10,000-op chain of tensors is fine as well:

# %%
t0 = ma.tensor(0.5, dtype=np.float64, requires_grad=True)
t = t0
for _ in range(10_000):
    t = t * 1.0001
t.backward()
print(f"minialign: {t0.grad:.6f}")
assert np.isclose(t0.grad, expected, rtol=1e-9)

# %% [markdown]
# ## 3. Why gradients accumulate
#
# When a value is used twice, the total derivative is the **sum** over every path through
# it. For $b = a + a$ there are two paths from $a$ to $b$, each contributing $1$:
#
# $$\frac{\partial b}{\partial a} = 1 + 1 = 2 .$$
#
# That is why every `_backward` above uses `+=`. Here is what goes wrong with `=`: each
# path *overwrites* the previous one, and the gradient silently comes out too small.


# %%
class OverwritingValue(Value):
    """A buggy Value: `_backward` assigns the gradient instead of adding to it."""

    def __add__(self, other):
        other = other if isinstance(other, Value) else OverwritingValue(other)
        out = OverwritingValue(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad = out.grad  # BUG: should be +=
            other.grad = out.grad

        out._backward = _backward
        return out


good = Value(3.0)
(good + good).backward()
bad = OverwritingValue(3.0)
(bad + bad).backward()
print(f"b = a + a:  correct db/da = {good.grad},  overwriting db/da = {bad.grad}")
assert good.grad == 2.0 and bad.grad == 1.0

# %% [markdown]
# The same bug in a less obvious place: in $y = a \cdot a + a$ we expect
# $\partial y/\partial a = 2a + 1$. The engine in minialign accumulates in exactly one
# place (`Tensor._accumulate`), so every op gets this right for free:

# %%
a_t = ma.tensor(3.0, dtype=np.float64, requires_grad=True)
(a_t * a_t + a_t).backward()
print(f"y = a*a + a at a = 3:  dy/da = {a_t.grad}  (2a + 1 = 7)")
assert a_t.grad == 7.0

# %% [markdown]
# ## 4. From scalars to tensors: matmul
#
# A `Value` per number is far too slow for a language model: one Python object and one
# closure per multiply. minialign's `Tensor` records one node per *array* operation; its
# `.data` and `.grad` are NumPy arrays of the same shape.
#
# For $C = A B$ with $A \in \mathbb{R}^{n \times k}$, $B \in \mathbb{R}^{k \times m}$ and an
# upstream gradient $\bar C = \partial L / \partial C$ (same shape as $C$), the chain rule
# entry by entry, $\bar A_{ip} = \sum_j \bar C_{ij} B_{pj}$, is itself a matrix product:
#
# $$\bar A = \bar C\, B^\top \quad (n \times k), \qquad \bar B = A^\top \bar C \quad (k \times m).$$
#
# A quick check that you have it right: the shapes only line up one way.

# %%
A_np = np.array([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0]])  # (2, 3)
B_np = np.array([[2.0, 1.0], [0.0, -1.0], [1.0, 4.0]])  # (3, 2)
G_np = np.array([[1.0, -2.0], [0.5, 3.0]])  # upstream gradient, (2, 2) like C

A_bar = G_np @ B_np.T  # (2, 2) @ (2, 3) -> (2, 3)
B_bar = A_np.T @ G_np  # (3, 2) @ (2, 2) -> (3, 2)

A = ma.tensor(A_np, requires_grad=True)
B = ma.tensor(B_np, requires_grad=True)
C = A @ B
C.backward(G_np)
print("C =\n", C.data)
print("A.grad =\n", A.grad, "\nB.grad =\n", B.grad)
assert A.grad.shape == A.shape and B.grad.shape == B.shape
assert np.allclose(A.grad, A_bar) and np.allclose(B.grad, B_bar)

# %% [markdown]
# ## 5. Undoing broadcasting
#
# NumPy lets `X + bias` add a bias of shape $(3,)$ to every row of an $X$ of shape $(4, 3)$.
# Broadcasting is a copy: the bias is stretched to $(4, 3)$ first. The gradient of a copy is
# the sum of the gradients of the copies, so the bias's gradient is $\bar Y$ summed over the
# rows: $\bar b_j = \sum_i \bar Y_{ij}$.
#
# In general, to take an output-shaped gradient back to an input's shape:
#
# 1. **left-pad** the input's shape with 1s until it has as many axes as the gradient;
# 2. **sum** over every axis where the padded shape is 1 but the gradient's is not.
#
# minialign does this in one place, `engine.unbroadcast`, so each op's backward can return
# an output-shaped gradient. On concrete shapes, $(4, 2, 3) \to (2, 1)$:

# %%
g = np.arange(24, dtype=float).reshape(4, 2, 3)
target = (2, 1)
padded = (1,) * (g.ndim - len(target)) + target  # (1, 2, 1)
stretched = tuple(i for i, n in enumerate(padded) if n == 1 and g.shape[i] != 1)  # (0, 2)
summed = g.sum(axis=stretched, keepdims=True).reshape(target)
print(f"padded {target} -> {padded}; sum over axes {stretched}")
print(summed)
assert np.array_equal(engine.unbroadcast(g, target), summed)

# %% [markdown]
# And inside a real backward pass, the bias of a linear layer:

# %%
X = ma.tensor(rng.standard_normal((4, 3)))
bias = ma.tensor(np.zeros(3), requires_grad=True)
Y = X + bias  # (4, 3) + (3,) -> (4, 3)
G = rng.standard_normal((4, 3))
Y.backward(G)
print("bias.grad =", bias.grad, " G.sum(axis=0) =", G.sum(axis=0))
assert bias.grad.shape == (3,) and np.allclose(bias.grad, G.sum(axis=0))

# %% [markdown]
# ## 6. Fused ops: softmax, log-softmax, and stability
#
# $\mathrm{softmax}(x)_i = e^{x_i} / \sum_j e^{x_j}$ could be built from `exp`, `sum` and a
# division, and autograd would differentiate it. minialign instead writes it as one *fused*
# op with a hand-derived backward: one node instead of four, less memory, and a place to
# make it numerically stable. Its Jacobian is
#
# $$\frac{\partial y_i}{\partial x_j} = y_i(\delta_{ij} - y_j), \qquad
#   J = \mathrm{diag}(y) - y y^\top ,$$
#
# and backward never builds $J$; it needs only the vector-Jacobian product
#
# $$\bar x = J^\top \bar y = y \odot \big(\bar y - \langle \bar y, y \rangle\big).$$

# %%
x_np = np.array([1.0, 2.0, 0.5, -1.0])
ybar = np.array([0.3, -1.0, 2.0, 0.1])  # an upstream gradient

y_np = np.exp(x_np) / np.exp(x_np).sum()
J = np.diag(y_np) - np.outer(y_np, y_np)
xbar_jacobian = J.T @ ybar
xbar_formula = y_np * (ybar - ybar @ y_np)

x = ma.tensor(x_np, requires_grad=True)
F.softmax(x).backward(ybar)
print("softmax  :", F.softmax(x).data)
print("J^T ybar :", xbar_jacobian)
print("x.grad   :", x.grad)
assert np.allclose(F.softmax(x).data, y_np)
assert np.allclose(xbar_jacobian, xbar_formula) and np.allclose(x.grad, xbar_jacobian)

# %% [markdown]
# The log-softmax $y_i = x_i - \log \sum_j e^{x_j}$ has
# $\partial y_i / \partial x_j = \delta_{ij} - \mathrm{softmax}(x)_j$, so
#
# $$\bar x = \bar y - \mathrm{softmax}(x) \sum_i \bar y_i .$$

# %%
p = np.exp(x_np) / np.exp(x_np).sum()
J_log = np.eye(4) - p[None, :]  # J_log[i, j] = delta_ij - p_j
x = ma.tensor(x_np, requires_grad=True)
F.log_softmax(x).backward(ybar)
print("x.grad:", x.grad)
assert np.allclose(J_log.T @ ybar, ybar - p * ybar.sum())
assert np.allclose(x.grad, ybar - p * ybar.sum())

# %% [markdown]
# **Why stability matters.** The textbook formulas break on numbers a model easily produces.
# $e^{1000}$ overflows float64, so the naive softmax of $[1000, 0]$ is `nan`. The fused op
# subtracts the maximum first ($\mathrm{softmax}(x) = \mathrm{softmax}(x - \max x)$), so every
# exponent is of a number $\le 0$.
#
# Reward models and DPO need $\log \sigma(x)$. At $x = -10^4$, $\sigma(x) = e^{-10^4}$
# rounds to $0$ and its log is $-\infty$, but the true value is $\approx -10^4$. `F.logsigmoid`
# uses $\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})$, which never exponentiates a
# positive number.

# %%
big = np.array([1000.0, 0.0])
with np.errstate(over="ignore", invalid="ignore"):
    naive_softmax = np.exp(big) / np.exp(big).sum()
print("naive softmax [1000, 0]:", naive_softmax, "  F.softmax:", F.softmax(ma.tensor(big)).data)
assert np.isnan(naive_softmax).any() and np.allclose(F.softmax(ma.tensor(big)).data, [1, 0])

x = ma.tensor([-1e4], dtype=np.float64)
with np.errstate(divide="ignore"):
    naive = ma.log(F.sigmoid(x)).item()
stable = F.logsigmoid(x).item()
print(f"log(sigmoid(-1e4)) = {naive},   F.logsigmoid(-1e4) = {stable}")
assert naive == -np.inf and stable == -1e4

# %% [markdown]
# ## 7. Gradient checking, and why a random upstream gradient
#
# A hand-written backward is a claim; central differences test it. The cheap way is to
# reduce the output with `.sum()` and compare gradients. But `.sum()` seeds backward with an
# upstream gradient of all ones, and a backward that *forgets to multiply by the upstream
# gradient* is then indistinguishable from a correct one.
#
# `minialign.gradcheck` instead draws a random $G$ and checks the gradient of
# $\phi(x) = \langle G, f(x) \rangle$ against
#
# $$\frac{\partial \phi}{\partial x_i} \approx \frac{\phi(x + \varepsilon e_i) - \phi(x - \varepsilon e_i)}{2\varepsilon}$$
#
# in float64. Below, `buggy_square` returns $2x$ instead of $\bar y \cdot 2x$.
# (It also shows how to write your own op: compute the output, return a closure for the
# gradient, wrap both with `engine.make_result`.)


# %%
def good_square(x):
    """$y = x^2$;  $\\bar x = \\bar y \\cdot 2x$."""
    x = engine.as_tensor(x)
    return engine.make_result(x.data**2, (x,), lambda g: (g * 2 * x.data,), "good_square")


def buggy_square(x):
    x = engine.as_tensor(x)
    return engine.make_result(x.data**2, (x,), lambda g: (2 * x.data,), "buggy_square")


def sum_check(f, x_np, eps=1e-6):
    """The weak test: compare the gradient of f(x).sum() with central differences."""
    x = ma.tensor(x_np.copy(), requires_grad=True)
    f(x).sum().backward()
    numeric = np.zeros_like(x_np)
    for i in range(x_np.size):
        e = np.zeros_like(x_np)
        e.flat[i] = eps
        numeric.flat[i] = (
            f(ma.tensor(x_np + e)).data.sum() - f(ma.tensor(x_np - e)).data.sum()
        ) / (2 * eps)
    return np.allclose(x.grad, numeric, rtol=1e-5, atol=1e-7)


x_np = rng.standard_normal(5)
print("sum-check, good_square :", sum_check(good_square, x_np))
print("sum-check, buggy_square:", sum_check(buggy_square, x_np), " <- the bug slips through")
assert sum_check(good_square, x_np) and sum_check(buggy_square, x_np)

assert gradcheck(good_square, [x_np], name="good_square")
try:
    gradcheck(buggy_square, [x_np], name="buggy_square")
except GradcheckError as err:
    print("gradcheck caught it:\n ", err)
else:
    raise AssertionError("gradcheck should reject buggy_square")

# %% [markdown]
# ## 8. Training a tiny MLP
#
# Everything together: a two-layer network $\hat y = W_2 \tanh(W_1 x + b_1) + b_2$ fitted to
# $y = \sin x$ on 64 points by plain gradient descent on the mean squared error
#
# $$L = \frac{1}{N} \sum_n (\hat y_n - y_n)^2, \qquad \theta \leftarrow \theta - \eta \nabla_\theta L .$$
#
# The update is the whole of an SGD optimiser: subtract `lr * p.grad` from each parameter,
# then clear the gradients (they would otherwise accumulate into the next step, see
# section 3). Plain gradient descent finds the overall shape within a few dozen steps and
# the tails slowly; adaptive optimisers such as AdamW close that gap faster.

# %%
init = np.random.default_rng(1)
X_train = np.linspace(-3, 3, 64, dtype=np.float32)[:, None]  # (N, 1)
Y_train = np.sin(X_train)  # (N, 1)
hidden = 16
W1 = ma.tensor(init.normal(0, 1.0, (1, hidden)).astype(np.float32), requires_grad=True)
b1 = ma.tensor(np.zeros(hidden, np.float32), requires_grad=True)
W2 = ma.tensor(init.normal(0, 0.1, (hidden, 1)).astype(np.float32), requires_grad=True)
b2 = ma.tensor(np.zeros(1, np.float32), requires_grad=True)
params = [W1, b1, W2, b2]


def mlp(x):
    h = ma.tanh(x @ W1 + b1)  # (N, hidden)
    return h @ W2 + b2  # (N, 1)


lr, steps, losses = 0.1, 400, []
for _ in range(steps):
    loss = ((mlp(X_train) - Y_train) ** 2).mean()
    loss.backward()
    for p in params:
        p.data -= lr * p.grad
        p.grad = None
    losses.append(loss.item())
print(f"loss: step 0 = {losses[0]:.4f}, step {steps - 1} = {losses[-1]:.4f}")
assert losses[-1] < 0.1 * losses[0]
assert W1.dtype == np.float32  # float32 in, float32 parameters out

# %%
fig, (ax_loss, ax_fit) = plt.subplots(1, 2, figsize=(10, 3.5))
ax_loss.plot(losses)
ax_loss.set_yscale("log")
ax_loss.set_title("Training loss (MSE)")
ax_loss.set_xlabel("step")
ax_loss.set_ylabel("mean squared error (log scale)")
with ma.no_grad():
    fit = mlp(X_train).data
ax_fit.plot(X_train[:, 0], Y_train[:, 0], "o", ms=3, label="data: sin x")
ax_fit.plot(X_train[:, 0], fit[:, 0], label="MLP after training")
ax_fit.set_title(f"Fit after {steps} steps")
ax_fit.set_xlabel("x")
ax_fit.set_ylabel("y")
ax_fit.legend()
fig.tight_layout()

# %% [markdown]
# ## 9. Catching a NaN with `detect_anomaly`
#
# A NaN born in one op spreads through everything computed from it, so by the time the loss
# prints `nan` the culprit is long gone. Inside `ma.detect_anomaly()`, every op checks its
# output (forward) and every gradient it passes back (backward), and raises
# `FloatingPointError` naming the op. Two examples: $\sqrt{-1}$ fails in the forward pass;
# $\sqrt{x}$ at $x = 0$ is fine forward but its derivative $1/(2\sqrt{x})$ is infinite.

# %%
x = ma.tensor([4.0, -1.0], dtype=np.float64, requires_grad=True)
with np.errstate(invalid="ignore"):
    silent = ma.sqrt(x).sum()
print("without detect_anomaly, the loss is just:", silent.item())

with ma.detect_anomaly(), np.errstate(invalid="ignore", divide="ignore"):
    try:
        ma.sqrt(x).sum()
    except FloatingPointError as err:
        print("forward: ", err)
    else:
        raise AssertionError("expected a FloatingPointError")

    x = ma.tensor([4.0, 0.0], dtype=np.float64, requires_grad=True)
    loss = ma.sqrt(x).sum()  # = 2.0, finite
    try:
        loss.backward()
    except FloatingPointError as err:
        print("backward:", err)
    else:
        raise AssertionError("expected a FloatingPointError")

# %% [markdown]
# ## 10. Try this
#
# Give `Value` two more operations, a power by a constant and a division, then check
# $f(x) = x / (1 + x^2)$ at $x = 0.5$ against the closed form
# $f'(x) = (1 - x^2) / (1 + x^2)^2$ and against minialign.
#
# Hints: $\partial (x^k) / \partial x = k x^{k-1}$, and $a / b = a \cdot b^{-1}$.
#
# <details>
# <summary><b>Solution</b> (click to expand)</summary>
#
# ```python
# def value_pow(self, k):  # k is a plain number
#     out = Value(self.data**k, (self,), f"**{k}")
#
#     def _backward():
#         self.grad += out.grad * k * self.data ** (k - 1)
#
#     out._backward = _backward
#     return out
#
#
# Value.__pow__ = value_pow
# Value.__truediv__ = lambda self, other: self * other**-1
#
# xv = Value(0.5)
# (xv / (1 + xv**2)).backward()
# closed_form = (1 - 0.5**2) / (1 + 0.5**2) ** 2  # 0.48
#
# xt = ma.tensor(0.5, dtype=np.float64, requires_grad=True)
# (xt / (1 + xt**2)).backward()
# assert math.isclose(xv.grad, closed_form) and math.isclose(xt.grad.item(), closed_form)
# ```
#
# </details>
#
# ## 11. Recap
#
# | | Equation |
# |---|---|
# | chain rule | $\frac{\partial y}{\partial a} = \frac{\partial y}{\partial u}\,\frac{\partial u}{\partial a}$; a value used twice sums its paths: $\frac{\partial (a + a)}{\partial a} = 2$ |
# | matmul $C = AB$ | $\bar A = \bar C B^\top$, $\;\bar B = A^\top \bar C$ |
# | broadcasting | the gradient of a broadcast input is summed over every axis it was stretched along |
# | softmax, log-softmax | $\bar x = y \odot (\bar y - \langle \bar y, y\rangle)$; $\;\bar x = \bar y - \mathrm{softmax}(x)\sum_i \bar y_i$ |
# | gradient check | $\partial\phi/\partial x_i \approx [\phi(x + \varepsilon e_i) - \phi(x - \varepsilon e_i)]/2\varepsilon$, $\;\phi = \langle G, f(x)\rangle$ |
#
# What to remember:
#
# 1. **Backward walks a topological order in reverse**, so a node runs only once its own
#    gradient is complete; the closures **accumulate** (`+=`) because a reused value collects
#    one term per path. (Sections 1–3.)
# 2. **Undo broadcasting in one place**: left-pad the shape with 1s, sum over the stretched
#    axes. (Section 5.)
# 3. **Fused ops are faster and stable**: subtract the maximum in softmax, never exponentiate a
#    positive number in $\log\sigma$. (Section 6.)
# 4. **Check gradients with a random upstream $G$** in float64: seeding with `.sum()` (all
#    ones) hides a backward that forgets the upstream gradient. (Section 7.)
# 5. **A NaN is an error**: `detect_anomaly` names the op that made it. (Section 9.)
