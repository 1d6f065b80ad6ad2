"""Seconds per training epoch of the seed configuration in PyTorch from Python: the loop that
bench_train_epoch times in Lepton, for the Lepton/PyTorch ratio.

Same shape as bench_train_epoch: MLP 8-128-64-1 ReLU, AdamW lr 1e-3, batch 32, 6,000 synthetic training rows
and 2,000 validation rows (8 normal features, about 3 % positives), and each epoch ends with a validation loss
pass. The first epoch is a warm-up and is not timed. Prints the median and the mean of the timed epochs.

    OMP_NUM_THREADS=1 python3 epoch_time.py --epochs 30
"""
import argparse
import json
import statistics
import time

import torch


def synthetic(rows, seed):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(rows, 8, generator=generator)
    # A linear rule as the label, as in bench_train_epoch: feature c weighs c % 3.
    score = features @ torch.tensor([float(c % 3) for c in range(8)])
    return features, (score > 5.0).float()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30, help="epochs, the first one untimed (at least 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error(f"--epochs is {args.epochs}, expected at least 2")
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    x_train, y_train = synthetic(6000, 1)
    x_validation, y_validation = synthetic(2000, 2)
    network = torch.nn.Sequential(torch.nn.Linear(8, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64),
                                  torch.nn.ReLU(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_function = torch.nn.BCEWithLogitsLoss()

    durations = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        network.train()
        order = torch.randperm(len(x_train))
        shuffled_features, shuffled_targets = x_train[order], y_train[order]
        for first in range(0, len(x_train), 32):
            optimizer.zero_grad()
            logits = network(shuffled_features[first:first + 32]).squeeze(1)
            loss_function(logits, shuffled_targets[first:first + 32]).backward()
            optimizer.step()
        network.eval()
        with torch.no_grad():
            loss_function(network(x_validation).squeeze(1), y_validation)
        durations.append(time.perf_counter() - start)

    timed = durations[1:]
    print(json.dumps(dict(torch=torch.__version__, threads=torch.get_num_threads(), epochs=len(timed),
                          median_seconds_per_epoch=statistics.median(timed),
                          mean_seconds_per_epoch=statistics.fmean(timed))))


if __name__ == "__main__":
    main()
