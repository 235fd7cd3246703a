#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: locust_follow
short_description: Print a running Locust test's progress on the control node until it ends
version_added: 0.3.0
description:
  - Follows a Locust run started on a host as an async task (C(async) with C(poll=0)), such as C(locust-headless)
    in C(run_test.yml). Every O(interval) seconds it asks for the job's status and reads the last line of the
    run's C(progress.jsonl) (written by the fleet's results plugin), and prints one line on the control node - the
    test's elapsed time, users, requests per second, failure percentage and workers connected.
  - When the job ends it returns the job's result (for a command, its C(rc), C(stdout), C(stderr)) and removes
    the job's status file.
  - The progress file belongs to the user who runs the locustfile, so it is read as O(read_as), and only numbers
    and Locust's state names are printed from it.
  - An action plugin - it runs on the control node and uses M(ansible.builtin.async_status) and
    M(ansible.builtin.command) on the host, with the task's C(become) settings (those that started the job).
author:
  - locustfleet maintainers (@locustfleet)
options:
  jid:
    description:
      - The async job to follow (the C(ansible_job_id) of the task that started it).
    type: str
    required: true
  progress_file:
    description:
      - The run's C(progress.jsonl) on the host.
    type: str
    required: true
  read_as:
    description:
      - The user the progress file is read as (with C(setpriv)); empty to read it as the task's user.
    type: str
    default: locust
  interval:
    description:
      - Seconds between two progress lines, 1 to 60.
    type: float
    default: 5.0
  timeout:
    description:
      - Seconds to follow the job at most; then the task fails with one line, and the job is left to its own
        C(async) limit. Set it a little above that limit.
    type: int
    required: true
  expected_workers:
    description:
      - The number of worker processes the run expects, printed as C(N of M workers connected).
    type: int
  label:
    description:
      - The start of each printed line.
    type: str
    default: locust
attributes:
  check_mode:
    support: none
    description: There is no job to follow in check mode; the task is skipped.
  diff_mode:
    support: none
    description: Nothing is changed.
notes:
  - Each progress line costs two module runs on the host; with SSH pipelining and C(ControlPersist) that is well
    under a second.
"""

EXAMPLES = r"""
- name: Run the test in the background
  ansible.builtin.command:
    argv: [/opt/locust/bin/locust-headless, -u, "50", -t, 5m, -w, "6", -o, /var/lib/locust/reports/run1]
  async: 420
  poll: 0
  register: run_job
  changed_when: true

- name: Print its progress until it ends
  locustfleet.triton.locust_follow:
    jid: "{{ run_job.ansible_job_id }}"
    progress_file: /var/lib/locust/reports/run1/progress.jsonl
    timeout: 450
    expected_workers: 6
    label: run_test
  register: run_result
  failed_when: run_result.rc | default(-1) not in [0, 1]
"""

RETURN = r"""
rc:
  description: The job's exit status (for a command).
  returned: when the job ended
  type: int
  sample: 0
stdout:
  description: The job's standard output (for a command).
  returned: when the job ended
  type: str
  sample: ""
stderr:
  description: The job's standard error (for a command).
  returned: when the job ended
  type: str
  sample: "locust-headless: 50 users at 5/s for 5m on 6 workers; reports in /var/lib/locust/reports/run1"
finished:
  description: Whether the job ended.
  returned: when the job ended
  type: bool
  sample: true
ansible_job_id:
  description: The job followed.
  returned: always
  type: str
  sample: "j601151371385.51200"
progress:
  description:
    - The last progress record read, as the results plugin wrote it (C(ts), C(elapsed), C(state), C(users),
      C(rps), C(fail_ratio), C(requests), C(workers)); null when none was read.
    - It comes from a file the locust user can write; treat it as untrusted.
  returned: when the job ended
  type: dict
  sample: {"ts": 1796300030.1, "elapsed": 58.0, "state": "running", "users": 50, "rps": 61.3, "fail_ratio": 0.0,
           "requests": 3410, "workers": 6}
followed_for:
  description: Seconds the job was followed.
  returned: when the job ended
  type: float
  sample: 63.2
"""
