"""Each private Hydra, hydra-optuna-sweeper and Optuna API that sweeplab.compat names still works as sweeplab uses
it. A failure names the installed versions: pin them back, or adapt sweeplab.compat to the new release."""
import inspect
import time

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from optuna.storages import RDBStorage

from sweeplab import compat

CHECK = f"a private API changed (installed: {compat.versions()}); adapt sweeplab/compat.py or pin the old version"


def test_the_official_sweepers_internals_that_sweeplab_extends():
    impl = compat.OptunaSweeperImpl
    for method in ("_process_searchspace_config", "_parse_sweeper_params_config", "_configure_trials",
                   "_get_directions", "_to_grid_sampler_choices", "setup"):
        assert callable(getattr(impl, method, None)), f"OptunaSweeperImpl.{method}: {CHECK}"
    assert list(inspect.signature(impl._configure_trials).parameters)[1:] == [
        "trials", "search_space_distributions", "fixed_params", "fixed_overrides"], CHECK
    distributions, fixed, deleted = compat.create_params_from_overrides(
        ["batch_size=choice(16,32)", "epochs=2", "~seed"])
    assert isinstance(distributions["batch_size"], optuna.distributions.CategoricalDistribution), CHECK
    assert fixed == {"epochs": "2"} and deleted == ["~seed"], CHECK


def test_trial_ids_waiting_trials_and_heartbeats(tmp_path):
    storage = RDBStorage(f"sqlite:///{tmp_path}/o.db", heartbeat_interval=60)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    assert compat.trial_id(trial) == compat.trial_id(study.trials[0]), CHECK
    assert optuna.load_study(study_name=study.study_name, storage=compat.storage_of(study)).trials, CHECK
    compat.set_trial_waiting(study, trial)
    assert study.trials[0].state == optuna.trial.TrialState.WAITING, CHECK
    assert compat.is_heartbeat_enabled(storage) is True, CHECK
    silent = RDBStorage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=1, grace_period=1)
    quiet = optuna.create_study(storage=silent)
    running = quiet.ask()
    silent.record_heartbeat(compat.trial_id(running))
    time.sleep(2.5)  # SQLite's now() counts whole seconds
    assert compat.stale_trial_ids(quiet) == [compat.trial_id(running)], CHECK
    assert compat.stale_trial_ids(optuna.create_study()) == [], CHECK  # no heartbeats in memory
    for name in compat.RDB_PRIVATE_OPERATIONS:
        assert inspect.isfunction(inspect.getattr_static(RDBStorage, name, None)), f"RDBStorage.{name}: {CHECK}"


def test_a_jobs_return_value_or_exception_without_reraising():
    failed = JobReturn(status=JobStatus.FAILED)
    failed._return_value = ValueError("boom")
    assert isinstance(compat.return_value(failed), ValueError), CHECK
    done = JobReturn(status=JobStatus.COMPLETED)
    done.return_value = 0.5
    assert compat.return_value(done) == 0.5, CHECK


def test_hydras_command_line_and_config_repository(tmp_path):
    args = compat.get_args_parser().parse_args(["-m", "batch_size=64"])
    assert args.multirun and args.overrides == ["batch_size=64"], CHECK
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "a.yaml").write_text("name: a\n")
    repository = compat.ConfigRepository(compat.create_config_search_path(str(tmp_path)))
    assert repository.group_exists("dataset") and repository.get_group_options("dataset") == ["a"], CHECK
    assert callable(getattr(compat.ConfigSearchPathImpl(), "append", None)), CHECK


def test_hydras_value_overrides_on_a_composed_config():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    config = OmegaConf.create({"batch_size": 128, "optimizer": {"lr": 0.001}, "hydra": {"job": {"env_set": {}}}})
    OmegaConf.set_struct(config, True)
    overrides = OverridesParser.create().parse_overrides(["batch_size=16", "optimizer.lr=0.01",
                                                           "++hydra.job.env_set.X='{\"a\": 1}'"])
    compat.ConfigLoaderImpl._apply_overrides_to_config(overrides, config)
    assert OmegaConf.to_container(config) == {"batch_size": 16, "optimizer": {"lr": 0.01},
                                              "hydra": {"job": {"env_set": {"X": '{"a": 1}'}}}}, CHECK


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        compat.no_such_private_api  # noqa: B018


def test_submitits_job_state_poller_and_the_launchers_settings():
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

    watcher = compat.SlurmInfoWatcher(delay_s=30)
    for method in ("_make_command", "read_info", "update", "register_job", "get_state", "is_done"):
        assert callable(getattr(watcher, method, None)), f"SlurmInfoWatcher.{method}: {CHECK}"
    watcher.register_job("12_0")
    for attribute in ("_registered", "_finished", "_info_dict", "_last_status_check", "_num_calls"):
        assert hasattr(watcher, attribute), f"SlurmInfoWatcher.{attribute}: {CHECK}"
    assert watcher._registered == {"12_0"}, CHECK
    assert isinstance(compat.SlurmJob.watcher, compat.SlurmInfoWatcher), CHECK
    assert compat.launcher_params(SlurmLauncher(partition="gpu", gpus_per_node=None)) == {
        "partition": "gpu", "gpus_per_node": None}, CHECK


def test_several_user_attributes_in_one_journal_append(tmp_path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    class CountingBackend(JournalFileBackend):
        appends = 0

        def append_logs(self, logs):
            CountingBackend.appends += 1
            super().append_logs(logs)

    path = str(tmp_path / "o.journal")
    study = optuna.create_study(storage=JournalStorage(CountingBackend(path)))
    trial = study.ask()
    before = CountingBackend.appends
    compat.set_user_attrs(trial, {"a": 1, "b": [2, 3]})
    with compat.collected_user_attrs(trial):  # what the official sweeper does for each fixed parameter
        trial.set_user_attr("c", "x")
        trial.set_user_attr("d", None)
        assert trial.user_attrs["c"] == "x", CHECK
    assert CountingBackend.appends - before == 2, CHECK
    assert trial.user_attrs == {"a": 1, "b": [2, 3], "c": "x", "d": None}, CHECK
    replayed = optuna.load_study(study_name=study.study_name, storage=JournalStorage(JournalFileBackend(path)))
    assert replayed.trials[0].user_attrs == {"a": 1, "b": [2, 3], "c": "x", "d": None}, CHECK
    study.tell(trial, 1.0)
    with pytest.raises(RuntimeError):  # as Trial.set_user_attr: a finished trial is not updated
        compat.set_user_attrs(trial, {"e": 1})


def test_several_user_attributes_in_a_database(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/o.db")
    trial = study.ask()
    compat.set_user_attrs(trial, {"a": 1, "b": "two"})
    assert study.trials[0].user_attrs == {"a": 1, "b": "two"}, CHECK


def test_hydras_run_job_parts_for_in_process_jobs(tmp_path):
    """sweep/in_process.py runs a job with these parts of Hydra's run_job."""
    from omegaconf import OmegaConf

    compat.save_config(OmegaConf.create({"batch_size": 64}), "config.yaml", tmp_path / ".hydra")
    assert (tmp_path / ".hydra" / "config.yaml").read_text() == "batch_size: 64\n", CHECK
    with compat.execution_whitelist([], reset=True):
        pass  # a context manager, as run_job uses it
    assert callable(compat.log_job_error_to_file), CHECK
