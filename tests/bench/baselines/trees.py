"""Gradient-boosted tree baselines on AI4I with library defaults, on one thread.

    OMP_NUM_THREADS=1 python3 trees.py hgb --data ai4i2020.csv --split-dir SPLIT_DIR --seeds 0,1,2
    OMP_NUM_THREADS=1 python3 trees.py xgb --data ai4i2020.csv --split-dir SPLIT_DIR --seeds 0,1,2

hgb: sklearn HistGradientBoostingClassifier(random_state=seed). Its thread count follows OMP_NUM_THREADS.
xgb: xgboost XGBClassifier(tree_method="hist", n_jobs=1, random_state=seed).
--physical-columns adds the temperature difference, torque x speed and tool wear x torque as inputs.
"""
import argparse
import json
import time

from common import add_common_arguments, load_split, parse_common_arguments, summarize, evaluate_on_test


def make_model(kind, seed):
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier
        return HistGradientBoostingClassifier(random_state=seed)

    import xgboost
    return xgboost.XGBClassifier(random_state=seed, n_jobs=1, tree_method="hist")


def library_version(kind):
    if kind == "hgb":
        import sklearn
        return f"sklearn {sklearn.__version__}"

    import xgboost
    return f"xgboost {xgboost.__version__}"


def train_one_seed(args, seed):
    (x_train, y_train), (x_validation, y_validation), (x_test, y_test) = load_split(
        args.data, args.split_dir, seed, with_physical_columns=args.physical_columns)
    model = make_model(args.kind, seed)

    start = time.perf_counter()
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - start

    result = evaluate_on_test(y_validation, model.predict_proba(x_validation)[:, 1], y_test,
                          model.predict_proba(x_test)[:, 1])
    result.update(seed=seed, seconds=seconds)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["hgb", "xgb"])
    add_common_arguments(parser)
    parser.add_argument("--physical-columns", action="store_true",
                        help="also give the model the three quantities that the failure rules threshold "
                             "(common.physical_columns)")
    args = parse_common_arguments(parser)

    results = [train_one_seed(args, seed) for seed in args.seed_list]
    summary = summarize(results, ["f1", "roc_auc", "pr_auc", "seconds"])
    print(json.dumps(dict(model=args.kind, physical_columns=args.physical_columns, library=library_version(args.kind), summary=summary,
                          per_seed=results)))


if __name__ == "__main__":
    main()
