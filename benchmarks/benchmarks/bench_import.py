"""asv: ``import mitk`` in a fresh interpreter (the scikit-image pattern)."""

import subprocess
import sys


class ImportSuite:
    def timeraw_import_mitk(self):
        return "import mitk", "import numpy"

    def timeraw_import_numpy_reference(self):
        return "import numpy"

    def track_import_mitk_extra_ms(self):
        def best(code):
            times = []
            for _ in range(5):
                out = subprocess.run([sys.executable, "-P", "-c",
                                      f"import time; t=time.perf_counter(); {code}; "
                                      "print(time.perf_counter()-t)"],
                                     capture_output=True, text=True, check=True)
                times.append(float(out.stdout))
            return min(times)

        return (best("import numpy; import mitk") - best("import numpy")) * 1e3

    track_import_mitk_extra_ms.unit = "ms"
