# mdata-list: list the customer metadata keys, one a line, like Triton's mdata-list(1M).
# Exit: 0 ok, 2 error.
import json
import os
import sys

PATH = os.environ.get("TRITONSIM_METADATA", "/var/lib/tritonsim/metadata/metadata.json")

try:
    with open(PATH, encoding="utf-8") as f:
        doc = json.load(f)
except (OSError, ValueError) as e:
    sys.stderr.write("Error listing metadata keys: %s\n" % e)
    sys.exit(2)
for key in sorted(doc.get("customer", {})):
    print(key)
