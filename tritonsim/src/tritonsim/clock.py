"""Timestamps in CloudAPI's format."""

import datetime as dt


def iso_now():
    """'2024-03-05T10:11:12.345Z'"""
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
