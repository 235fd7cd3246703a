"""Per-account token buckets, like CloudAPI's restify throttle (10 r/s, burst 30)."""

import threading
import time


def parse_spec(text):
    """'10:30' -> (10.0, 30); 'off' -> None."""
    if text.strip().lower() == "off":
        return None
    rate, sep, burst = text.partition(":")
    try:
        rate, burst = float(rate), int(burst) if sep else None
    except ValueError:
        raise ValueError(f"expected RATE:BURST or off, got {text!r}") from None
    if burst is None:
        burst = max(1, int(rate))
    if rate <= 0 or burst < 1:
        raise ValueError("throttle rate and burst must be positive")
    return rate, burst


class Throttle:
    def __init__(self, rate, burst, clock=time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets = {}   # key -> [tokens, last refill time]
        self._lock = threading.Lock()

    def allow(self, key):
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [float(self.burst), now]
            tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            if tokens < 1:
                bucket[0] = tokens
                return False
            bucket[0] = tokens - 1
            return True

    def message(self):
        rate = int(self.rate) if float(self.rate).is_integer() else self.rate
        return f"You have exceeded your request rate of {rate} r/s."
