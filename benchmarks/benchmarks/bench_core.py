"""asv: allocation, construction, views and accessors (the cases live in mitk._bench)."""

import threading

import numpy as np

import mitk
from mitk._core import ReadAccessor

MiB = 1 << 20


class ConstructSuite:
    params = [1, 64]
    param_names = ["MiB"]

    def setup(self, mib):
        self.arr = np.ones(mib * MiB // 4, np.float32).reshape(-1, 256, 256 // 4 if mib == 1 else 256)
        self.dst = np.empty_like(self.arr)

    def time_image_copy(self, mib):
        mitk.Image(self.arr)

    def time_image_adopt(self, mib):
        mitk.Image(self.arr, copy=False)

    def time_memcpy_reference(self, mib):
        np.copyto(self.dst, self.arr)

    def peakmem_image_copy(self, mib):
        mitk.Image(self.arr)


class ViewSuite:
    def setup(self):
        self.img = mitk.Image(np.zeros((64, 64, 64), np.float32))
        self.buf = self.img.pixel_buffer
        self.lock = threading.Lock()

    def time_as_numpy(self):
        self.img.as_numpy()

    def time_array(self):
        self.img.array

    def time_np_asarray(self):
        np.asarray(self.img)

    def time_accessor_view(self):
        self.img.as_numpy(use_accessor=True)

    def time_read_accessor(self):
        with ReadAccessor(self.buf):
            pass

    def time_threading_lock_reference(self):
        with self.lock:
            pass


class ThreadSuite:
    timeout = 120

    def setup(self):
        self.img = mitk.Image(np.ones(64 * MiB // 4, np.float32).reshape(-1, 256, 256))

    def _sum(self, threads):
        def work():
            for _ in range(4):
                with self.img.read() as acc:
                    acc.array.sum()

        ts = [threading.Thread(target=work) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    def time_sum_one_thread(self):
        self._sum(1)

    def time_sum_two_threads(self):
        self._sum(2)


class PickleSuite:
    def setup(self):
        import pickle

        self.pickle = pickle
        self.img = mitk.Image(np.ones(150 * 1000 * 1000 // 4, np.float32).reshape(-1, 250, 250))
        self.arr = np.asarray(self.img)

    def _round_trip(self, obj):
        buffers = []
        data = self.pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        self.pickle.loads(data, buffers=buffers)

    def time_pickle5_image(self):
        self._round_trip(self.img)

    def time_pickle5_ndarray_reference(self):
        self._round_trip(self.arr)


class ContendedLockSuite:
    """Two Python threads taking one image's write lock in turn, beside threading.Lock."""

    N = 20_000

    def setup(self):
        from mitk._core import WriteAccessor

        self.WriteAccessor = WriteAccessor
        self.buf = mitk.Image(np.zeros((4, 4), np.float32)).pixel_buffer
        self.lock = threading.Lock()

    def _two(self, fn):
        ts = [threading.Thread(target=fn) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    def time_write_accessor_two_threads(self):
        def work():
            for _ in range(self.N):
                with self.WriteAccessor(self.buf):
                    pass

        self._two(work)

    def time_threading_lock_two_threads_reference(self):
        def work():
            for _ in range(self.N):
                with self.lock:
                    pass

        self._two(work)
