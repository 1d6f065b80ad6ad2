"""Distributed training from Python: options, sharding, and a two-rank group on 127.0.0.1."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lepton

# Each rank runs in its own Python process, as ranks do under lepton launch or torchrun.
RANK_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import lepton

    port, rank = int(sys.argv[1]), int(sys.argv[2])
    options = lepton.DistributedOptions(master_port=port, world_size=2, rank=rank, timeout_seconds=30)
    group = lepton.ProcessGroup.join(options)

    values = np.full(3, rank + 1, dtype=np.float32)
    group.all_reduce_sum(values)
    gathered = group.all_gather_bytes(b"rank%d" % rank)

    generator = np.random.default_rng(5)
    features = generator.normal(size=(128, 3)).astype(np.float32)
    labels = (features[:, 0] > 0).astype(np.int64)
    shard = lepton.shard_rows(128, rank, 2)
    config = lepton.ModelConfig()
    config.hidden_units = [4]
    config.max_epochs = 2
    config.batch_size = 16
    trainer = lepton.TrainerOptions(config=config)
    result = lepton.fit_data_parallel(group, trainer, lepton.TrainingData(features[shard], labels=labels[shard]),
                                      lepton.TrainingData(features, labels=labels))
    print(json.dumps({"sum": values.tolist(), "gathered": [g.decode() for g in gathered],
                      "weights": result.network.layers[0].weight.tolist(), "epochs": len(result.history),
                      "all_reduce_calls": group.stats().all_reduce_calls}))
""")


def test_options_setters_chain():
    options = lepton.DistributedOptions().with_master("127.0.0.1", 29600).with_world(4, 3).with_timeout(5.0)
    assert options.master_port == 29600
    assert options.world_size == 4
    assert options.rank == 3
    assert options.timeout_seconds == 5.0


def test_options_validate_rejects_rank_outside_world():
    with pytest.raises(lepton.InvalidArgument, match="rank"):
        lepton.DistributedOptions(world_size=2, rank=2).validate()


def test_options_from_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("MASTER_PORT", "29777")
    options = lepton.DistributedOptions.from_environment()
    assert (options.world_size, options.rank, options.master_port) == (3, 1, 29777)
    monkeypatch.setenv("WORLD_SIZE", "three")
    with pytest.raises(lepton.InvalidArgument, match="WORLD_SIZE"):
        lepton.DistributedOptions.from_environment()


def test_shard_rows_drops_remainder():
    assert lepton.shard_rows(7, 1, 3).tolist() == [1, 4]
    assert lepton.shard_rows(7, 0, 3).tolist() == [0, 3]


def test_data_parallel_order_is_a_permutation():
    order = lepton.data_parallel_order(42, 0, 5, 2)
    assert sorted(order.tolist()) == list(range(10))
    assert order.tolist() == lepton.data_parallel_order(42, 0, 5, 2).tolist()


def test_initial_parameters_layout():
    config = lepton.ModelConfig()
    config.hidden_units = [4]
    parameters = lepton.initial_parameters(config, 3, 1)
    assert parameters.dtype == np.float32
    assert parameters.size == 3 * 4 + 4 + 4 * 1 + 1


def test_trainer_options_federated_fields():
    parameters = np.arange(5, dtype=np.float64)
    options = lepton.TrainerOptions(initial_parameters=parameters, proximal_mu=0.1, restore_best=False)
    assert options.initial_parameters.dtype == np.float32
    assert options.initial_parameters.tolist() == [0, 1, 2, 3, 4]
    assert options.proximal_mu == 0.1
    assert options.restore_best is False


def test_row_order_callable_is_used():
    generator = np.random.default_rng(1)
    features = generator.normal(size=(32, 2)).astype(np.float32)
    data = lepton.TrainingData(features, labels=(features[:, 0] > 0).astype(np.int64))
    calls = []

    def reverse(epoch, rows):
        calls.append((epoch, rows))
        return np.arange(rows)[::-1].copy()

    config = lepton.ModelConfig()
    config.hidden_units = [4]
    config.max_epochs = 2
    options = lepton.TrainerOptions(config=config, row_order=reverse)
    assert options.row_order is reverse
    lepton.Trainer(options).fit(data, data)
    assert calls == [(0, 32), (1, 32)]


def test_row_order_exception_is_raised():
    features = np.zeros((8, 2), dtype=np.float32)
    data = lepton.TrainingData(features, labels=np.array([0, 1] * 4))

    def broken(epoch, rows):
        raise KeyError("no order")

    config = lepton.ModelConfig()
    config.max_epochs = 1
    with pytest.raises(KeyError, match="no order"):
        lepton.Trainer(lepton.TrainerOptions(config=config, row_order=broken)).fit(data, data)


def test_all_reduce_rejects_read_only_array():
    values = np.zeros(3, dtype=np.float32)
    values.flags.writeable = False
    # One-rank group: the argument check runs before any collective.
    options = lepton.DistributedOptions(master_port=lepton.find_free_port(), timeout_seconds=10)
    group = lepton.ProcessGroup.join(options)
    with pytest.raises(ValueError, match="read-only"):
        group.all_reduce_sum(values)
    with pytest.raises(TypeError, match="float32"):
        group.all_reduce_mean(np.zeros(3, dtype=np.float64))


def test_two_ranks_train_the_same_network(tmp_path):
    port = lepton.find_free_port()
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    ranks = [subprocess.Popen([sys.executable, "-c", RANK_SCRIPT, str(port), str(rank)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=environment) for rank in range(2)]
    outputs = []
    for process in ranks:
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert outputs[0]["sum"] == [3.0, 3.0, 3.0]
    assert outputs[1]["sum"] == [3.0, 3.0, 3.0]
    assert outputs[0]["gathered"] == ["rank0", "rank1"]
    assert outputs[0]["epochs"] == outputs[1]["epochs"]
    assert outputs[0]["weights"] == outputs[1]["weights"]
    assert outputs[0]["all_reduce_calls"] > 0


def test_distributed_error_is_a_runtime_error():
    assert issubclass(lepton.DistributedError, RuntimeError)
    assert issubclass(lepton.DistributedError, lepton.Error)


def test_join_timeout_raises_distributed_error():
    options = lepton.DistributedOptions(master_port=lepton.find_free_port(), world_size=2, rank=0,
                                        timeout_seconds=1.0)
    with pytest.raises(lepton.DistributedError):
        lepton.ProcessGroup.join(options)


def test_compose_private_steps_equals_one_long_run():
    rounds = [lepton.PrivateSteps(0.01, 1.1, 50) for _ in range(4)]
    composed = lepton.compose_private_steps(rounds, 1e-5)
    single = lepton.compose_private_steps([lepton.PrivateSteps(0.01, 1.1, 200)], 1e-5)
    assert composed.epsilon == pytest.approx(single.epsilon, rel=1e-12)
    assert composed.epsilon > 0


def test_compose_private_steps_rejects_bad_delta():
    with pytest.raises(ValueError, match="delta"):
        lepton.compose_private_steps([lepton.PrivateSteps(0.01, 1.1, 10)], 2.0)


def test_federated_result_has_privacy_fields():
    for name in ("stop_reason", "privacy", "client_privacy"):
        assert hasattr(lepton.FederatedResult, name)

