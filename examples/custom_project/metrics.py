"""This project's own metrics: sweeplab builds them from `metrics:` in conf/config.yaml and logs each as val_<name>
(every epoch) and test_<name> (at the end); val_<name> can be an objective. ``outputs`` are the model's logits for a
batch (a class) or the whole split (a function), ``targets`` the class indices."""


class RecallAtK:
    """torchmetrics' protocol by hand: update per batch, compute one number, reset."""

    def __init__(self, k: int = 3):
        self.k = k
        self.reset()

    def reset(self):
        self.hits, self.seen = 0, 0

    def update(self, outputs, targets):
        top = outputs.topk(self.k, dim=1).indices
        self.hits += int((top == targets[:, None]).any(1).sum())
        self.seen += len(targets)

    def compute(self):
        return self.hits / self.seen


def worst_class_accuracy(outputs, targets):
    """A function over the whole split: the accuracy of the class the model gets right least often."""
    right = outputs.argmax(1) == targets
    return min(right[targets == c].float().mean().item() for c in targets.unique())
