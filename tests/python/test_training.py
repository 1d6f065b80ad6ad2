"""The trainer from Python: progress callbacks, stopping, Ctrl-C and the released GIL."""
import signal
import threading
import time

import numpy as np
import pytest

import lepton


@pytest.fixture(scope="module")
def small_job(table, requirements_path):
    """Training data of the AI4I example and its configuration, cut to a few epochs."""
    requirements = lepton.load_requirements(requirements_path)
    config = lepton.configure(requirements, lepton.profile_table(table, requirements.target, requirements.task))
    config.max_epochs = 6
    config.patience = 6
    all_rows = np.arange(table.rows)
    encoding = lepton.TargetEncoding.fit(table, requirements.target, requirements.task, all_rows)
    labels = encoding.encode_labels(table, all_rows)
    split = lepton.stratified_split(labels, requirements.split, requirements.seed)
    preprocessor = lepton.Preprocessor.fit(table, config.features, split.train)
    train = lepton.TrainingData(preprocessor.transform(table, split.train), labels=labels[split.train])
    validation = lepton.TrainingData(preprocessor.transform(table, split.validation), labels=labels[split.validation])
    return config, train, validation


def test_progress_callback_sees_every_epoch(small_job):
    config, train, validation = small_job
    records = []
    options = lepton.TrainerOptions(config=config).with_progress(records.append)
    result = lepton.Trainer(options).fit(train, validation)
    assert [record.epoch for record in records] == list(range(1, 7))
    assert all(record.max_epochs == 6 for record in records)
    assert result.stop_reason == "max_epochs"
    assert len(result.history) == 6
    assert options.on_epoch == records.append


def test_with_methods_return_the_same_options(small_job):
    config, _, _ = small_job
    options = lepton.TrainerOptions()
    assert options.with_config(config).with_threads(2).with_time_budget(30.0) is options
    assert options.threads == 2
    assert options.max_seconds == 30.0
    assert options.config.max_epochs == 6


def test_callback_exception_stops_and_is_raised(small_job):
    config, train, validation = small_job
    seen = []

    def fail_on_second(record):
        seen.append(record.epoch)
        if record.epoch == 2:
            raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        lepton.Trainer(lepton.TrainerOptions(config=config, on_epoch=fail_on_second)).fit(train, validation)
    assert seen == [1, 2]  # no call after the failing one


def test_stop_token_returns_partial_result(small_job):
    config, train, validation = small_job
    token = lepton.StopToken()

    def stop_after_two(record):
        if record.epoch == 2:
            token.request_stop()

    result = lepton.Trainer(lepton.TrainerOptions(config=config, on_epoch=stop_after_two)).fit(
        train, validation, stop=token)
    assert result.stop_reason == "stop_requested"
    assert 2 <= len(result.history) < 6
    assert result.network.inputs == train.features.shape[1]
    result.network.validate()


def test_ctrl_c_interrupts_and_checkpoint_resumes(small_job, tmp_path):
    config, train, validation = small_job
    checkpoint = tmp_path / "checkpoint.pt"
    epochs = []

    def interrupt_after_two(record):
        epochs.append(record.epoch)
        if record.epoch == 2:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C delivers
            # The main thread polls for signals every 50 ms, so give it time to request the stop before the
            # last epochs run, even on a loaded machine.
            time.sleep(0.3)

    options = lepton.TrainerOptions(config=config, on_epoch=interrupt_after_two, checkpoint_path=str(checkpoint))
    # A shell starts background jobs with SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    # Install it here, so that the test does not depend on how the test run was started.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            lepton.Trainer(options).fit(train, validation)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert 2 <= len(epochs) < 6
    assert checkpoint.is_file()

    resumed = lepton.Trainer(lepton.TrainerOptions(config=config, checkpoint_path=str(checkpoint), resume=True)).fit(
        train, validation)
    assert resumed.resumed
    assert resumed.stop_reason == "max_epochs"
    assert len(resumed.history) == 6


def test_gil_is_released_during_training(small_job):
    config, train, validation = small_job
    counter = [0]
    done = threading.Event()

    def spin():
        while not done.is_set():
            counter[0] += 1

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        before = counter[0]
        lepton.Trainer(lepton.TrainerOptions(config=config)).fit(train, validation)
        during = counter[0] - before
    finally:
        done.set()
        thread.join()
    # A held GIL would let the thread run only between Python switch intervals of the main thread,
    # which spends the whole fit inside C++; thousands of iterations show that it ran alongside.
    assert during > 10_000


def test_gil_is_released_during_prediction(predictor, table):
    encoded = np.repeat(predictor.encode(table), 20, axis=0)  # 200,000 rows
    counter = [0]
    done = threading.Event()

    def spin():
        while not done.is_set():
            counter[0] += 1

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        before = counter[0]
        predictor.predict(encoded)
        during = counter[0] - before
    finally:
        done.set()
        thread.join()
    assert during > 1_000


def test_log_sink_receives_messages():
    messages = []
    lepton.set_log_sink(lambda level, message: messages.append((level, message)))
    lepton.set_log_level(lepton.LogLevel.Info)
    try:
        lepton.log(lepton.LogLevel.Warning, "from the test")
        lepton.log(lepton.LogLevel.Debug, "below the level")
    finally:
        lepton.set_log_level(lepton.LogLevel.Off)
        lepton.set_log_sink(None)
    assert messages == [(lepton.LogLevel.Warning, "from the test")]
    assert lepton.log_level() == lepton.LogLevel.Off
