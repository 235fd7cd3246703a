"""tritonsim: a CloudAPI-compatible local cloud for tests and fleet rehearsals.

Install it with ``pip install ./tritonsim`` (from the locustfleet.triton
repository) and start it with ``tritonsim serve ...``; see tritonsim/README.md
for the options, the fault injection endpoints and the machine-backend interface.
"""

# What a real CloudAPI reports: the code version goes into the Server header,
# the API versions are what Accept-Version ranges are matched against.
CLOUDAPI_CODE_VERSION = "9.20.0"
API_VERSIONS = ("9.0.0", "8.0.0", "7.3.0", "7.2.0", "7.1.0", "7.0.0")
