"""Search trials waiting for their population: asked freely from the sampler, grouped by the values a stack must
share (batch size, model), each group launched as one population job once it is full.

The sampler, not the first member, decides which batch sizes run, and in what proportion: every value it proposes
is trained, in a stack of its own kind. A group smaller than a full population is a smaller stack; it waits while
other groups fill, but never long: once the pool holds ``limit`` trials, or the search has asked for all its trials,
the largest group goes as it is. Every pooled trial is already RUNNING in the study (claimed by this process, its
heartbeat kept), so concurrent asks see it and the constant liar keeps new proposals away from it.
"""
from collections.abc import Hashable

POOL_POPULATIONS = 4  # the pool asks at most this many full populations ahead of the jobs that run them


class PopulationPool:
    def __init__(self, full: int, limit: int):
        self.full, self.limit = full, limit
        self.groups: dict[Hashable, list] = {}  # shared values -> [(trial, overrides, trial id)], in the order asked
        self.trial_ids: set[int] = set()  # of the pooled trials, for the loop's heartbeat

    def __len__(self) -> int:
        return sum(len(group) for group in self.groups.values())

    def add(self, shared: dict, member: tuple, trial_id: int) -> list | None:
        """Pool one asked trial under its shared values; returns its group, taken out, if that made it full."""
        key = tuple(sorted((k, repr(v)) for k, v in shared.items()))
        group = self.groups.setdefault(key, [])
        group.append((*member, trial_id))
        self.trial_ids.add(trial_id)
        return self._take(key) if len(group) >= self.full else None

    def take_largest(self) -> list | None:
        """The largest group (the one that started first among equals), or None when the pool is empty."""
        if not self.groups:
            return None
        return self._take(max(self.groups, key=lambda key: len(self.groups[key])))

    def drain(self) -> list:
        """Every pooled trial, taken out (the sweep stopped before their populations ran)."""
        return [member for key in list(self.groups) for member in self._take(key)]

    def _take(self, key) -> list:
        group = self.groups.pop(key)
        self.trial_ids.difference_update(id_ for _, _, id_ in group)
        return [(trial, overrides) for trial, overrides, _ in group]
