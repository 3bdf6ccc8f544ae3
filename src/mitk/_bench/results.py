"""The result record every benchmark case produces, and its JSON form.

JSON layout (``python -m mitk bench --json FILE``)::

    {
      "schema": 1,
      "mitk_version": "0.1.0",
      "quick": false,
      "machine": {"python": "3.11.7", "numpy": "2.4.6", "platform": "...", "cpus": 2, ...},
      "results": [
        {
          "case": "core.construct_copy",          # unique, stable name
          "group": "core",                         # core | locks | io | pickle | import
          "description": "Image(arr) of a 64 MiB float32 volume (a copy)",
          "value": 9.1, "unit": "GB/s",             # our figure
          "reference": "memcpy (np.copyto into a preallocated array)",
          "reference_value": 9.6, "reference_unit": "GB/s",
          "ratio": 0.95,                            # value / reference_value
          "target": ">= 0.9x",                      # from the issue tracker; "" if none
          "quick": false,                           # measured by a --quick run
          "met": true,                              # null: no target, or not judged (below)
          "peers": {"SimpleITK": {"version": "2.4.0", "value": 2.2, "unit": "GB/s"}}
        }, ...
      ]
    }

A peer entry may also carry ``"ratio"`` when its own ratio is the meaningful one (for the
two-thread read case: the peer's two threads over its one thread); otherwise the table shows the
peer's value over our reference.  ``mitk-python (upstream)`` entries come from a separate
interpreter (``--upstream-python``), measured there with the same best-of-N rule.

``ratio`` is always ``value / reference_value``; whether higher or lower is better is stated by
the target (``>= 0.9x`` for speeds, ``<= 3x`` for times).  Absolute targets (``<= 1 us``) are
checked against ``value``.

Targets are set for the full-size run.  A ``--quick`` run shrinks most workloads (8 MiB volumes
instead of 80, shorter thread runs), where fixed costs weigh more and memory overheads are a
larger share of the payload, so its figures are not judged against them: ``met`` is null and the
table says why.  The exceptions are the cases in :data:`QUICK_JUDGED`, whose quick run does the
same per-call work as the full one with fewer repeats.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re

SCHEMA = 1

#: Case names (or prefixes) whose targets are judged in ``--quick`` runs too: per-call costs
#: that do not depend on the volume size.
QUICK_JUDGED = ("core.view_", "core.construct_adopt", "locks.accessor_view",
                "locks.read_accessor", "locks.cimport_read_pair", "import.mitk")

#: Why a quick figure is not judged (the table's "met" column points here).
QUICK_NOTE = ("quick run: this target is for the full-size workload (run without --quick "
              "to judge it)")

_TARGET = re.compile(r"^\s*(<=|>=)\s*([0-9.eE+-]+)\s*(x|us|ms|GB/s)\s*$")


@dataclasses.dataclass
class Result:
    """One measured case; see the module docstring for the meaning of each field."""

    case: str
    group: str
    description: str
    value: float
    unit: str
    reference: str = ""
    reference_value: float = float("nan")
    reference_unit: str = ""
    target: str = ""
    peers: dict = dataclasses.field(default_factory=dict)
    quick: bool = False

    @property
    def judged(self) -> bool:
        """Whether the target applies to this figure (always, except quick-size workloads)."""
        return bool(self.target) and (not self.quick or self.case.startswith(QUICK_JUDGED))

    @property
    def ratio(self) -> float:
        """``value / reference_value`` (NaN without a reference)."""
        if not self.reference_value or math.isnan(self.reference_value):
            return float("nan")
        return self.value / self.reference_value

    @property
    def met(self) -> bool | None:
        """Whether the target holds (None when there is none or it does not apply, see judged)."""
        m = _TARGET.match(self.target)
        if not m or not self.judged:
            return None
        op = operator.le if m.group(1) == "<=" else operator.ge
        bound = float(m.group(2))
        measured = self.ratio if m.group(3) == "x" else self.value
        if math.isnan(measured):
            return False
        return op(measured, bound)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["ratio"] = None if math.isnan(self.ratio) else self.ratio
        d["met"] = self.met
        for key in ("value", "reference_value"):
            if isinstance(d[key], float) and math.isnan(d[key]):
                d[key] = None
        return d

    @classmethod
    def from_json(cls, d: dict) -> Result:
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in fields}
        for key in ("value", "reference_value"):
            if kwargs.get(key) is None:
                kwargs[key] = float("nan")
        return cls(**kwargs)
