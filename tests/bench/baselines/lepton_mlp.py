"""The seed design trained with Lepton's own Trainer (LibTorch, through the `lepton` Python module), on the same
encoded rows as mlp.py.

Seed design: MLP 8-128-64-1 with ReLU, AdamW (lr 1e-3, weight decay 1e-4), batch 32, 100 epochs, constant
learning rate, positive class weight 1, patience 0 (no early stopping). Unlike mlp.py, the Trainer returns the
weights of the epoch with the best validation F1, not the last epoch's.

    PYTHONPATH=BUILD/bindings/python python3 lepton_mlp.py --data ai4i2020.csv --split-dir SPLIT_DIR
"""
import argparse
import json

import numpy as np

import lepton
from common import add_common_arguments, load_split, parse_common_arguments, summarize, evaluate_on_test


def seed_design(seed, epochs):
    config = lepton.ModelConfig()
    config.hidden_units = [128, 64]
    config.activation = lepton.Activation.Relu
    config.optimizer = "adamw"
    config.learning_rate = 1e-3
    config.weight_decay = 1e-4
    config.lr_schedule = "constant"
    config.warmup_epochs = 0
    config.batch_size = 32
    config.max_epochs = epochs
    config.patience = 0
    config.dropout = 0.0
    config.positive_class_weight = 1.0
    config.objective = lepton.Metric.F1
    config.seed = seed
    return config


def forward(network, features):
    """Return the positive-class probability of each row: the network's logit through a sigmoid."""
    activations = {lepton.Activation.Identity: lambda x: x,
                   lepton.Activation.Relu: lambda x: np.maximum(x, 0.0),
                   lepton.Activation.Tanh: np.tanh}
    values = features.astype(np.float64)
    for layer in network.layers:
        values = activations[layer.activation](values @ layer.weight.astype(np.float64).T + layer.bias)
    return 1.0 / (1.0 + np.exp(-values[:, 0]))


def train_one_seed(args, seed):
    (x_train, y_train), (x_validation, y_validation), (x_test, y_test) = load_split(args.data, args.split_dir,
                                                                                    seed)
    options = lepton.TrainerOptions(config=seed_design(seed, args.epochs), threads=1)
    result = lepton.Trainer(options).fit(lepton.TrainingData(x_train, labels=y_train),
                                         lepton.TrainingData(x_validation, labels=y_validation))

    metrics = evaluate_on_test(y_validation, forward(result.network, x_validation), y_test,
                           forward(result.network, x_test))
    epochs = len(result.history)
    metrics.update(seed=seed, seconds=result.seconds, epochs=epochs, best_epoch=result.best_epoch,
                   stop_reason=result.stop_reason, seconds_per_epoch=result.seconds / epochs)
    return metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--epochs", type=int, default=100, help="epochs to train")
    args = parse_common_arguments(parser)

    results = [train_one_seed(args, seed) for seed in args.seed_list]
    summary = summarize(results, ["f1", "roc_auc", "pr_auc", "seconds", "seconds_per_epoch", "best_epoch"])
    print(json.dumps(dict(model="lepton_trainer", summary=summary, per_seed=results)))


if __name__ == "__main__":
    main()
