# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sample locustfile installed by the locustfleet.triton.locust role when locust_files is empty.

Every user requests / on the target host (--host, or the master's locust_host) once or
twice a second. Replace it with your own through the role variable locust_files.
"""

from locust import HttpUser, between, task


class RootPageUser(HttpUser):
    wait_time = between(0.5, 1.5)

    @task
    def index(self):
        self.client.get("/")
