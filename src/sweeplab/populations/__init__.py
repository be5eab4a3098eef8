"""Populations: K trials of one study trained together as one stacked model.

- ``stack``: K copies of a network as one (stacked Linear and Conv layers) and the check that a model stacks;
- ``member_optimizer``: one torch optimizer per member, over its slices of the stacked parameters;
- ``fit``: the training loop of a stack, each member with its own batches, metrics, best weights and early end;
- ``job``: the population job: its members' configs, folders, MLflow runs and Optuna trials;
- ``pool``: the sweep's side: asked trials grouped by the values a stack shares, until a group fills a population;
- ``size``: ``population=auto``, as many members as fill the device.
"""
