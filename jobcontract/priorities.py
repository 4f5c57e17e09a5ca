"""Request priority -> message priority, and where kombu keeps each priority's messages.

kombu's Redis transport keeps one list per priority step (the first step under the queue's
own name, the others suffixed with the separator and the step) and pops them in step order,
so 0 is served first.
"""

PRIORITY_STEPS = [0, 3, 6, 9]
PRIORITY_SEP = "\x06\x16"  # kombu's default, set explicitly in celeryconfig
PRIORITIES = {"high": 0, "normal": 3, "low": 9}


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold a queue's messages, one per priority step."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS]
