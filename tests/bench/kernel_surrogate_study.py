"""Study: does a regression-adjusted Kernel SHAP lower the tail error on a random ReLU MLP?

Kernel SHAP with paired sampling is exact for games whose interactions have order 2 or less, so its error
comes from higher-order interactions. A regression adjustment fits a surrogate game g to the sampled
coalitions, takes the exact Shapley values of g, and lets Kernel SHAP estimate only the residual v - g:

    phi = phi_exact(g) + KernelSHAP(v - g)

Two surrogates with closed-form Shapley values are tried:
- gradient-boosted trees on the coalition indicators (a leaf that needs the members of A present and those
  of B absent gives (|A|-1)! |B|! / (|A|+|B|)! to each member of A and minus |A|! (|B|-1)! / (|A|+|B|)! to each
  member of B);
- a ridge fit of all monomials up to order 3 (a monomial over T gives 1/|T| of its weight to each member).

The game is interventional: v(S) is the mean of the model over 100 background rows with the features outside
S taken from the background. Features are few enough to enumerate all 2^M coalitions for the exact values.
The model is built like tests/support/random_mlp.hpp (He-scaled normal weights, sigmoid output), with
numpy's generator, so its weights differ from the C++ benchmark's.

Usage: python3 tests/bench/kernel_surrogate_study.py [FEATURES] [BUDGETS]
       e.g. python3 tests/bench/kernel_surrogate_study.py 16 512,1024,2048
Needs python3-numpy and python3-sklearn. 16 features take about a minute.
"""

import itertools
import math
import sys

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor

BACKGROUND_ROWS = 100
EXPLAINED_ROWS = 3
SEEDS = 5


def random_mlp(widths, rng):
    layers = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        layers.append((rng.normal(size=(fan_in, fan_out)) * math.sqrt(2.0 / fan_in), 0.1 * rng.normal(size=fan_out)))
    return layers


def predict(layers, rows):
    hidden = rows
    for index, (weight, bias) in enumerate(layers):
        hidden = hidden @ weight + bias
        if index + 1 < len(layers):
            hidden = np.maximum(hidden, 0.0)
    return 1.0 / (1.0 + np.exp(-hidden[:, 0]))


def game_values(layers, background, row, masks):
    """v(S) for each 0/1 row of `masks`, in chunks so that the hybrid rows fit in memory."""
    values = np.empty(len(masks))
    for start in range(0, len(masks), 512):
        chunk = masks[start:start + 512].astype(float)[:, None, :]
        hybrid = chunk * row[None, None, :] + (1.0 - chunk) * background[None, :, :]
        values[start:start + 512] = predict(layers, hybrid.reshape(-1, row.size)).reshape(len(chunk), -1).mean(1)
    return values


def exact_shapley(values, features):
    """Shapley values from the game values of all 2^M coalitions, indexed by their bit masks."""
    index = np.arange(2 ** features)
    sizes = np.array([bin(mask).count("1") for mask in index])
    weight = np.array([math.factorial(s) * math.factorial(features - s - 1) / math.factorial(features)
                       for s in range(features)])
    phi = np.zeros(features)
    for i in range(features):
        without = index[(index >> i) & 1 == 0]
        phi[i] = np.sum(weight[sizes[without]] * (values[without | (1 << i)] - values[without]))
    return phi


def sample_coalitions(features, budget, rng):
    """Whole complementary size pairs from the outside in while the budget covers them, then paired draws of
    the remaining sizes in proportion to their Shapley kernel mass. Returns masks and regression weights."""
    kernel = [0.0] + [(features - 1) / (s * (features - s)) for s in range(1, features)] + [0.0]
    masks, weights, enumerated = [], [], set()
    left = budget
    for size in range(1, features // 2 + 1):
        mirror = features - size
        count = math.comb(features, size) * (1 if size == mirror else 2)
        if count > left:
            break
        for members in itertools.combinations(range(features), size):
            mask = np.zeros(features, np.int8)
            mask[list(members)] = 1
            masks.append(mask)
            weights.append(kernel[size] / math.comb(features, size))
            if size != mirror:
                masks.append(1 - mask)
                weights.append(kernel[mirror] / math.comb(features, size))
        enumerated.update((size, mirror))
        left -= count

    rest = [s for s in range(1, features) if s not in enumerated]
    pairs = left // 2
    if rest and pairs > 0:
        mass = np.array([kernel[s] for s in rest])
        for _ in range(pairs):
            size = rest[rng.choice(len(rest), p=mass / mass.sum())]
            mask = np.zeros(features, np.int8)
            mask[rng.choice(features, size, replace=False)] = 1
            masks += [mask, 1 - mask]
            weights += [mass.sum() / (2 * pairs)] * 2
    return np.array(masks), np.array(weights)


def kernel_shap(masks, weights, values, empty, full):
    """Solves the weighted least squares with sum(phi) = v(full) - v(empty) by eliminating the last feature."""
    design = masks[:, :-1] - masks[:, [-1]]
    target = values - empty - masks[:, -1] * (full - empty)
    weighted = design * weights[:, None]
    solution = np.linalg.lstsq(weighted.T @ design, weighted.T @ target, rcond=None)[0]
    return np.append(solution, (full - empty) - solution.sum())


def tree_surrogate_shapley(masks, values, features):
    """Fits boosted trees to the sampled game; returns their exact Shapley values and their game values."""
    model = GradientBoostingRegressor(n_estimators=200, max_depth=4, learning_rate=0.1, random_state=0)
    model.fit(masks, values)
    phi = np.zeros(features)
    for tree in (estimator[0].tree_ for estimator in model.estimators_):
        stack = [(0, [], [])]
        while stack:
            node, present, absent = stack.pop()
            if tree.children_left[node] == -1:
                leaf = tree.value[node][0][0] * model.learning_rate
                a, b = len(present), len(absent)
                for i in present:
                    phi[i] += leaf * math.factorial(a - 1) * math.factorial(b) / math.factorial(a + b)
                for j in absent:
                    phi[j] -= leaf * math.factorial(a) * math.factorial(b - 1) / math.factorial(a + b)
                continue
            feature = tree.feature[node]
            stack.append((tree.children_left[node], present, absent + [feature]))
            stack.append((tree.children_right[node], present + [feature], absent))
    return phi, model.predict


def polynomial_surrogate_shapley(masks, weights, values, empty, features, ridge=0.1):
    """Fits all monomials up to order 3 by weighted ridge; returns their exact Shapley values and game values."""
    terms = [t for order in (1, 2, 3) for t in itertools.combinations(range(features), order)]

    def expand(rows):
        return np.stack([np.prod(rows[:, list(t)], axis=1) for t in terms], axis=1).astype(float)

    design = expand(masks)
    scaled = weights / weights.mean()
    gram = (design * scaled[:, None]).T @ design + ridge * np.eye(len(terms))
    coefficients = np.linalg.solve(gram, (design * scaled[:, None]).T @ (values - empty))
    phi = np.zeros(features)
    for coefficient, term in zip(coefficients, terms):
        phi[list(term)] += coefficient / len(term)
    return phi, lambda rows: empty + expand(rows) @ coefficients


def adjusted(phi_surrogate, surrogate, masks, weights, values, empty, full, features):
    ends = surrogate(np.stack([np.zeros(features, np.int8), np.ones(features, np.int8)]))
    residual = values - surrogate(masks)
    return phi_surrogate + kernel_shap(masks, weights, residual, empty - ends[0], full - ends[1])


def main():
    features = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    budgets = [int(b) for b in (sys.argv[2] if len(sys.argv) > 2 else "256,512,1024").split(",")]
    rng = np.random.default_rng(2024)
    layers = random_mlp([features, 128, 64, 1], rng)
    background = rng.normal(size=(BACKGROUND_ROWS, features))
    rows = rng.normal(size=(EXPLAINED_ROWS, features))
    all_masks = ((np.arange(2 ** features)[:, None] >> np.arange(features)[None, :]) & 1).astype(np.int8)
    bit_values = 1 << np.arange(features)

    errors = {}
    for r, row in enumerate(rows):
        values = game_values(layers, background, row, all_masks)
        exact = exact_shapley(values, features)
        output_range = values.max() - values.min()
        empty, full = values[0], values[-1]
        for budget in budgets:
            for seed in range(SEEDS):
                masks, weights = sample_coalitions(features, budget, np.random.default_rng(100 * seed + r))
                sampled = values[masks @ bit_values]
                estimates = {"kernel": kernel_shap(masks, weights, sampled, empty, full)}
                phi, surrogate = tree_surrogate_shapley(masks, sampled, features)
                estimates["trees"] = adjusted(phi, surrogate, masks, weights, sampled, empty, full, features)
                phi, surrogate = polynomial_surrogate_shapley(masks, weights, sampled, empty, features)
                estimates["order3"] = adjusted(phi, surrogate, masks, weights, sampled, empty, full, features)
                for name, estimate in estimates.items():
                    errors.setdefault((budget, name), []).append(np.abs(estimate - exact).max() / output_range)

    print(f"{features} features, {EXPLAINED_ROWS} rows x {SEEDS} seeds; max |error| per explanation, "
          "as a fraction of the output range")
    print(f"{'budget':>7} {'estimator':>9} {'mean':>9} {'largest':>9}")
    for (budget, name), values in sorted(errors.items()):
        print(f"{budget:>7} {name:>9} {np.mean(values):>9.2e} {np.max(values):>9.2e}")


if __name__ == "__main__":
    main()
