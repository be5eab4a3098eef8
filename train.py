"""Train one configuration: `python train.py batch_size=64`; sweep: `python train.py -m hydra/sweeper=optuna`."""
import gc

# Start-up loads ~500 000 objects that live as long as the process (Hydra, torch, MLflow); the cycle collector
# would walk them again and again while they load and once more at exit: about a third of a short job's CPU time.
# sweeplab.cli.task turns it back on when the first job ends.
gc.disable()
from sweeplab import main  # noqa: E402

if __name__ == "__main__":
    try:
        main(config_path="conf", config_name="config")
    finally:
        gc.freeze()  # exit frees everything anyway: spare the collector's final passes over it
