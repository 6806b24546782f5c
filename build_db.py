"""Build papers.db from the dumps in dumps/.

    python build_db.py                          # dumps/ -> papers.db
    python build_db.py --dumps DIR --out FILE   # any folder -> any file

The stages live in the neuroai_papers package: parse, dedupe, enrich, write.
"""

import sys

from neuroai_papers.build import main

if __name__ == "__main__":
    sys.exit(main())
