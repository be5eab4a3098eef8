from sweeplab.data.splits import Splits, batches, make_splits

__all__ = ["Splits", "batches", "make_splits"]
