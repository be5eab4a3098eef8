"""Ctrl-C (SIGINT) and SIGTERM end a job or a sweep as a KeyboardInterrupt, and are never lost.

Python raises the KeyboardInterrupt wherever the main thread is when the signal lands. Inside a finalizer (a
``__del__``: tqdm's, an iterator's) it is printed as "Exception ignored" and dropped, and the job trained on to its end
(seen: a sweep that finished after its Ctrl-C). So the signal is also recorded, and the training and trial loops call
``raise_if_stopped`` at each epoch and before each trial.
"""
import signal

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
_received: list[int] = []


def install() -> None:
    """Handle both signals; a SIGINT ignored by whoever started us (a script's background job) stays ignored."""
    _received.clear()
    signal.signal(signal.SIGTERM, _on_signal)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_signal)


def _on_signal(signum, frame) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def raise_if_stopped() -> None:
    """Raise the KeyboardInterrupt again if a signal came and its first one was swallowed."""
    if _received:
        raise KeyboardInterrupt


def received() -> signal.Signals:
    """The signal that stopped us (SIGINT where Python raised KeyboardInterrupt itself)."""
    return signal.Signals(_received[0]) if _received else signal.SIGINT
