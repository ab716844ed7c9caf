"""One-time conversion of a trusted pickled checkpoint to safetensors.

    python -m lotts.verifiers.convert path/to/HPS_v2.1_compressed.pt [out.safetensors]

Run it (from the pack folder) only on a file you trust: it unpickles with
``weights_only=False``. The verifier loaders themselves never do.
"""

import sys

from .weights import convert_to_safetensors

if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        sys.exit(2)
    print(convert_to_safetensors(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None))
