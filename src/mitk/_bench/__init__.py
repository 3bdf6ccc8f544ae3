"""Benchmarks of mitk beside same-run references (``python -m mitk bench``; asv wraps these).

Each case measures one operation and, in the same run, the reference it is judged against
(memcpy bandwidth, ``np.fromfile``/``tofile``, zlib, a bare pthread rwlock, ``threading.Lock``),
and reports the ratio and the target from the issue tracker.  See :mod:`mitk._bench.runner` for the
table and the JSON layout.
"""
