"""Train one configuration: `python train.py batch_size=64`; sweep: `python train.py -m hydra/sweeper=optuna`."""
from sweeplab.cli import main

if __name__ == "__main__":
    main()
