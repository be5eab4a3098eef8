"""Train this project's model with sweeplab: `python train.py`; sweep: `python train.py -m hydra/sweeper=optuna`."""
from sweeplab import main

if __name__ == "__main__":
    main(config_path="conf", config_name="config")
