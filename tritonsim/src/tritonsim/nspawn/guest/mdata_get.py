# mdata-get KEY: print one metadata value, like Triton's mdata-get(1M).
# Installed by tritonsim's nspawn backend. The host keeps the metadata in a
# read-only bind mount; updates made through CloudAPI show up here at once.
# Exit: 0 found, 1 no such key, 2 error, 3 usage.
import json
import os
import sys

PATH = os.environ.get("TRITONSIM_METADATA", "/var/lib/tritonsim/metadata/metadata.json")


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("Usage: %s <keyname>\n" % os.path.basename(argv[0]))
        return 3
    key = argv[1]
    try:
        with open(PATH, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.stderr.write("Error getting metadata for key '%s': %s\n" % (key, e))
        return 2
    table = doc.get("sdc", {}) if key.startswith("sdc:") else doc.get("customer", {})
    if key not in table or table[key] is None:
        sys.stderr.write("No metadata for '%s'\n" % key)
        return 1
    value = table[key]
    if not isinstance(value, str):
        value = json.dumps(value)
    sys.stdout.write(value if value.endswith("\n") else value + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
