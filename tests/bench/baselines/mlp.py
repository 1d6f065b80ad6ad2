"""PyTorch MLP baseline on AI4I; the defaults are the seed design.

Seed design: MLP 8-128-64-1 with ReLU, AdamW (lr 1e-3, weight decay 1e-4), batch 32, 100 epochs, constant
learning rate, no early stopping (the last epoch's weights are tested). One intra-op thread.

    OMP_NUM_THREADS=1 python3 mlp.py --data ai4i2020.csv --split-dir SPLIT_DIR --seeds 0,1,2
"""
import argparse
import json
import math
import time

import numpy as np
import torch

from common import add_common_arguments, best_threshold, load_split, parse_common_arguments, summarize, \
    evaluate_on_test


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--hidden", default="128,64", help="comma-separated hidden layer widths")
    parser.add_argument("--activation", choices=["relu", "gelu"], default="relu")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    parser.add_argument("--batch", type=int, default=32, help="rows per step")
    parser.add_argument("--epochs", type=int, default=100, help="maximum epochs")
    parser.add_argument("--patience", type=int, default=0,
                        help="epochs without validation F1 gain before stopping; 0: no early stopping, "
                             "test the last epoch")
    parser.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    parser.add_argument("--warmup", type=int, default=0, help="epochs of linear learning-rate warm-up")
    parser.add_argument("--positive-weight", default="1",
                        help="BCE pos_weight: a number, 'sqrt' (sqrt(neg/pos)) or 'ratio' (neg/pos)")
    return parse_common_arguments(parser)


def build_network(inputs, hidden, activation):
    widths = [inputs] + hidden
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        layers.append(torch.nn.GELU() if activation == "gelu" else torch.nn.ReLU())
    layers.append(torch.nn.Linear(widths[-1], 1))
    return torch.nn.Sequential(*layers)


def positive_weight(args, labels):
    negatives, positives = int((labels == 0).sum()), int((labels == 1).sum())
    named = {"sqrt": math.sqrt(negatives / positives), "ratio": negatives / positives}
    return named.get(args.positive_weight) or float(args.positive_weight)


def learning_rate_at(args, step, steps_per_epoch):
    warmup_steps = steps_per_epoch * args.warmup
    if step < warmup_steps:
        return args.lr * (step + 1) / warmup_steps
    if args.schedule == "cosine":
        total = steps_per_epoch * args.epochs
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, total - warmup_steps)))
    return args.lr


def predict(network, features):
    network.eval()
    with torch.no_grad():
        return torch.sigmoid(network(features).squeeze(1)).numpy()


def train_one_seed(args, seed):
    (x_train, y_train), (x_validation, y_validation), (x_test, y_test) = load_split(args.data, args.split_dir,
                                                                                    seed)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    network = build_network(x_train.shape[1], [int(h) for h in args.hidden.split(",")], args.activation)
    loss_function = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([positive_weight(args, y_train)]))
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=args.weight_decay)

    features, targets = torch.from_numpy(x_train), torch.from_numpy(y_train).float()
    validation_features, test_features = torch.from_numpy(x_validation), torch.from_numpy(x_test)
    steps_per_epoch = math.ceil(len(features) / args.batch)

    best_f1, best_state, best_epoch, epochs_without_gain = -1.0, None, 0, 0
    step, epoch = 0, 0
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        network.train()
        order = torch.randperm(len(features), generator=generator)
        shuffled_features, shuffled_targets = features[order], targets[order]
        for first in range(0, len(features), args.batch):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(args, step, steps_per_epoch)
            optimizer.zero_grad()
            logits = network(shuffled_features[first:first + args.batch]).squeeze(1)
            loss = loss_function(logits, shuffled_targets[first:first + args.batch])
            loss.backward()
            optimizer.step()
            step += 1

        if args.patience:
            _, validation_f1 = best_threshold(y_validation, predict(network, validation_features))
            if validation_f1 > best_f1 + 1e-4:
                best_f1, best_epoch, epochs_without_gain = validation_f1, epoch, 0
                best_state = {k: v.clone() for k, v in network.state_dict().items()}
            else:
                epochs_without_gain += 1
                if epochs_without_gain >= args.patience:
                    break
    seconds = time.perf_counter() - start

    if best_state is not None:
        network.load_state_dict(best_state)
    result = evaluate_on_test(y_validation, predict(network, validation_features), y_test,
                          predict(network, test_features))
    result.update(seed=seed, seconds=seconds, epochs=epoch, best_epoch=best_epoch or epoch,
                  seconds_per_epoch=seconds / epoch)
    return result


def main():
    args = parse_arguments()
    torch.set_num_threads(1)
    results = [train_one_seed(args, seed) for seed in args.seed_list]
    summary = summarize(results, ["f1", "roc_auc", "pr_auc", "seconds", "seconds_per_epoch"])
    print(json.dumps(dict(model="pytorch_mlp", torch=torch.__version__, threads=torch.get_num_threads(),
                          args={k: v for k, v in vars(args).items() if k != "seed_list"},
                          summary=summary, per_seed=results)))


if __name__ == "__main__":
    main()
