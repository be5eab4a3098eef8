"""Every private Hydra and Optuna API the sweep relies on, in one place, each named and tested
(tests/test_compat.py fails naming the package version when one of them changes). Pinned versions: pyproject."""
import hydra
import optuna
from hydra._internal.config_repository import ConfigRepository  # noqa: F401  (group options, for one-line errors)
from hydra._internal.utils import create_config_search_path  # noqa: F401
from hydra._internal.utils import get_args_parser  # noqa: F401  (Hydra's own command line, read before it runs)
from hydra_plugins.hydra_optuna_sweeper._impl import (  # noqa: F401  (the official sweeper, extended)
    OptunaSweeperImpl,
    create_params_from_overrides,
)
from optuna.storages._heartbeat import is_heartbeat_enabled  # noqa: F401
from optuna.trial import TrialState

VERSIONS = f"hydra-core {hydra.__version__}, optuna {optuna.__version__}"


def trial_id(trial: optuna.Trial) -> int:
    """The storage's id of a trial (Trial keeps it private; storages and heartbeats need it)."""
    return trial._trial_id


def set_trial_waiting(study: optuna.Study, trial: optuna.Trial) -> None:
    """Put an asked trial back in the queue (no public API does this)."""
    study._storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)


def return_value(ret):
    """What a Hydra job returned, or the exception it raised, without JobReturn.return_value re-raising it."""
    return ret._return_value
