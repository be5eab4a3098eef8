"""Names that code, tests and users' tools share: MLflow tags, Optuna user attributes, files a sweep writes."""

# MLflow tags
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests a child run under its parent
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # MLflow 3's UI opens an experiment in the view this tag names
STATE_TAG = "sweeplab.state"  # COMPLETE | PRUNED | FAIL, the Optuna trial's end
END_REASON_TAG = "sweeplab.end_reason"
KIND_TAG = "sweeplab.kind"  # "study" on a parent run
ROLE_TAG = "sweeplab.role"  # baseline | search | confirm, on a trial's run
OUTPUT_DIR_TAG = "sweeplab.output_dir"
MODEL_TRIAL_TAG = "sweeplab.logged_model_trial"
OBJECTIVE_TAG = "sweeplab.objective"  # on a grid's parent run

# Optuna study user attributes
PRUNER_ATTR = "sweeplab.pruner"
OBJECTIVE_ATTR = "sweeplab.objective"  # the first objective's metric (the one a one-objective study optimises)
OBJECTIVES_ATTR = "sweeplab.objectives"  # every objective: [{"metric", "direction"}, ...]
SAMPLER_ATTR = "sweeplab.sampler"
PARENT_RUN_ATTR = "sweeplab.mlflow_parent_run_id"
CONFIRM_PLAN_ATTR = "sweeplab.confirm_plan"  # on the confirmation study: its jobs, by trial number
QUESTION_ATTR = "sweeplab.question"  # the search space and the fixed settings that change the objective
NOTE_ATTR = "sweeplab.note"  # what a study holds, in words (the confirmation study says it holds repeats)
WARM_START_ATTR = "sweeplab.warm_start"  # the study whose configurations were enqueued first

# Optuna trial user attributes
RUN_ID_ATTR = "mlflow_run_id"
OUTPUT_DIR_ATTR = "output_dir"
WORKER_ATTR = "sweeplab.worker"
FAIL_REASON_ATTR = "fail_reason"
ROLE_ATTR = "sweeplab.role"
SEED_ATTR = "sweeplab.seed"
CONFIRMS_ATTR = "sweeplab.confirms"  # a confirmation trial: the number of the trial whose configuration it repeats
FIXED_PARAMS_ATTR = "sweeplab.fixed_params"
RUN_SETTINGS_ATTR = "sweeplab.run_settings"  # pruner, sampler, n_jobs, population of the run that asked the trial
INTERRUPTED = "interrupted"  # a trial's fail_reason when Ctrl-C or SIGTERM stopped it: a rerun runs it again
WORKER_DIED = "its worker process died"
# a trial whose worker died after its job had ended its MLflow run FINISHED: its values were read back from that run
RECOVERED_ATTR = "sweeplab.recovered_from_run"
# A trial whose job the scheduler ended (scancel, time limit, lost node: sweeplab.slurm.ended.SlurmJobEnded) has a
# fail_reason that starts with this: like an interrupted one, its baseline or confirmation job runs again on a rerun.
SCHEDULER_ENDED = "SlurmJobEnded:"
TEST_ACCURACY_ATTR = "test_accuracy"
FEASIBLE_ATTR = "sweeplab.feasible"  # with objective.constraints: whether the trial met them all

# Files
WEIGHTS_FILE = "best.pt"
RESULTS_FILE = "optimization_results.yaml"
JOURNAL_FILE = "optuna.journal"
CONFIRM_SUFFIX = ".confirm"  # the sibling study `<study>.confirm` holds the confirmation trials
CONFIRMATION_TABLE = "confirmation.json"

# A sweep job's link to its Optuna trial(s), set by the sweeper in the job's environment (hydra.job.env_set), never
# in the user's config: JSON {"storage", "study_name", "trial_id"} or, for a population, {..., "population": [...]}.
TRIAL_ENV = "SWEEPLAB_TRIAL"
