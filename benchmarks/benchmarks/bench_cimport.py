"""asv: lock cost through the cimport API from nogil code, beside a bare pthread rwlock.

Uses the consumer that mitk._bench builds (with meson) on first use.
"""

import numpy as np

import mitk
from mitk._bench.cimport_cases import _two_threads, build_consumer

N = 100_000


class _WithConsumer:
    """Setup shared by the suites (no benchmark of its own): the consumer and a small buffer."""

    def setup(self):
        self.consumer = build_consumer()
        self.buf = mitk.Image(np.zeros((4, 4), np.float32)).pixel_buffer


class CimportSuite(_WithConsumer):
    """One thread taking and dropping read locks, from nogil code."""

    def time_mitk_read_lock_pairs(self):
        self.consumer.mitk_read_pairs(self.buf, N)

    def time_pthread_rwlock_pairs_reference(self):
        self.consumer.pthread_read_pairs(N)


class CimportContendedSuite(_WithConsumer):
    """Two threads taking one write lock in turn, from nogil code."""

    def time_mitk_write_lock_two_threads(self):
        _two_threads(self.consumer.mitk_write_pairs, self.buf, N)

    def time_pthread_rwlock_two_threads_reference(self):
        _two_threads(self.consumer.pthread_shared_write_pairs, N)


class CimportSharedReadsSuite(_WithConsumer):
    """Two threads taking read locks of one buffer at once, from nogil code."""

    def time_mitk_read_locks_two_threads(self):
        _two_threads(self.consumer.mitk_read_pairs, self.buf, N)

    def time_pthread_rwlock_reads_two_threads_reference(self):
        _two_threads(self.consumer.pthread_shared_read_pairs, N)
