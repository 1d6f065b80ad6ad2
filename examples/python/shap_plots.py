"""SHAP plots of a Lepton model with matplotlib: global importance, beeswarm, and a waterfall for one row.

Usage: shap_plots.py MODEL DATA_CSV OUTPUT_DIR [ROW]
Explains up to 1000 rows of DATA_CSV exactly over the background stored in MODEL (run_pipeline stores
one) and writes importance.png, beeswarm.png and waterfall.png into OUTPUT_DIR. ROW (default: the row
with the highest predicted probability) is the 0-based data row of the waterfall.
"""
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import lepton

MAX_ROWS = 1000
POSITIVE = "#d62728"
NEGATIVE = "#1f77b4"


def explain(model_path: str, frame: pd.DataFrame) -> lepton.Explanation:
    artifact = lepton.load_artifact(model_path)
    model = lepton.explain_model(artifact, lepton.default_output_link(artifact))
    groups = lepton.FeatureGroups.from_preprocessor(artifact.preprocessor)
    explainer = lepton.ExactExplainer(model, lepton.stored_background(artifact), groups)
    return explainer.explain(artifact.preprocessor.transform(frame))


def plot_importance(explanation: lepton.Explanation, path: pathlib.Path) -> None:
    importance = lepton.global_importance(explanation)
    order = np.argsort(importance.mean_abs[:, 0])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.barh([importance.group_names[i] for i in order], importance.mean_abs[order, 0], color=POSITIVE)
    ax.set_xlabel("mean |SHAP value| (change in P(failure))")
    ax.set_title(f"Global feature importance over {explanation.rows} rows")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def color_values(column: pd.Series) -> np.ndarray:
    """Scale a raw column to [0, 1] for the color map; categories by their sorted order."""
    if column.dtype.kind in "if":
        values = column.to_numpy(dtype=float)
    else:
        codes = {category: i for i, category in enumerate(sorted(column.dropna().unique()))}
        values = column.map(codes).to_numpy(dtype=float)
    low, high = np.nanmin(values), np.nanmax(values)
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def plot_beeswarm(explanation: lepton.Explanation, frame: pd.DataFrame, path: pathlib.Path) -> None:
    importance = lepton.global_importance(explanation).mean_abs[:, 0]
    order = np.argsort(importance)
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for position, group in enumerate(order):
        values = explanation.values[:, group, 0]
        jitter = rng.uniform(-0.3, 0.3, size=values.shape)
        points = ax.scatter(values, position + jitter, c=color_values(frame[explanation.group_names[group]]),
                            cmap="coolwarm", s=8, alpha=0.8, vmin=0, vmax=1, linewidths=0)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([explanation.group_names[i] for i in order])
    ax.set_xlabel("SHAP value (change in P(failure))")
    ax.set_title("Per-row attributions")
    colorbar = fig.colorbar(points, ax=ax, ticks=[0, 1], pad=0.02)
    colorbar.ax.set_yticklabels(["low", "high"])
    colorbar.set_label("feature value")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_waterfall(explanation: lepton.Explanation, frame: pd.DataFrame, row: int, data_row: int,
                   path: pathlib.Path) -> None:
    values = explanation.values[row, :, 0]
    order = np.argsort(np.abs(values))  # largest at the top
    base = explanation.base_values[0]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    start = base + values.sum() - np.cumsum(values[order][::-1])[::-1]
    labels = []
    for position, group in enumerate(order):
        value = values[group]
        left = start[position]
        ax.barh(position, value, left=left, color=POSITIVE if value >= 0 else NEGATIVE)
        ax.text(left + value + (0.005 if value >= 0 else -0.005), position, f"{value:+.3f}",
                va="center", ha="left" if value >= 0 else "right", fontsize=8)
        name = explanation.group_names[group]
        labels.append(f"{name} = {frame[name].iloc[row]}")
    ax.axvline(base, color="grey", linestyle="--", linewidth=0.8)
    ax.axvline(explanation.predictions[row, 0], color="black", linewidth=0.8)
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels(labels)
    ax.set_xlabel("P(failure)")
    ax.set_title(f"Row {data_row}: base {base:.3f} -> prediction {explanation.predictions[row, 0]:.3f}")
    low = min(base, start.min(), (start + values[order]).min())
    high = max(base, start.max(), (start + values[order]).max())
    margin = 0.12 * (high - low)
    ax.set_xlim(low - margin, high + margin)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main(model_path: str, data_path: str, output_dir: str, row: int = -1) -> None:
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.read_csv(data_path)
    explained = frame.iloc[:MAX_ROWS] if row < MAX_ROWS else pd.concat([frame.iloc[:MAX_ROWS - 1], frame.iloc[[row]]])
    explanation = explain(model_path, explained)

    position = int(np.argmax(explanation.predictions[:, 0])) if row < 0 else min(row, len(explained) - 1)
    data_row = int(explained.index[position])
    plot_importance(explanation, out / "importance.png")
    plot_beeswarm(explanation, explained.reset_index(drop=True), out / "beeswarm.png")
    plot_waterfall(explanation, explained.reset_index(drop=True), position, data_row, out / "waterfall.png")
    print(f"Wrote {out}/importance.png, beeswarm.png, waterfall.png ({explanation.rows} rows explained)")


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else -1)
