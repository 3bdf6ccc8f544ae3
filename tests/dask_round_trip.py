"""Run by test_transport.py in a fresh interpreter: images to and from Dask worker processes.

A separate script (rather than a test function) so that the worker function lives in
``__main__`` and travels by value, and so that the test can bound the whole run with a timeout.
"""

import numpy as np

import mitk


def change_on_worker(img):
    img.as_numpy(writeable=True)[...] += 1
    img.spacing = (9.0, 8.0, 7.0)
    img.properties["worker"] = "done"
    return img


def main() -> None:
    from distributed import Client, LocalCluster

    images = [mitk.Image(np.full((3, 4, 5), i, np.int16), origin=(i, 0, 0)) for i in range(4)]
    for i, img in enumerate(images):
        img.properties["index"] = i
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=50) as cluster, \
            Client(cluster) as client:
        results = client.gather(client.map(change_on_worker, images, pure=False))
        pids = set(client.run(lambda: __import__("os").getpid()).values())
    assert len(pids) == 2 and __import__("os").getpid() not in pids
    for i, out in enumerate(results):
        assert isinstance(out, mitk.Image)
        assert (out.array == i + 1).all()
        assert out.spacing == (9.0, 8.0, 7.0) and out.origin == (float(i), 0.0, 0.0)
        assert out.properties["worker"] == "done" and out.properties["index"] == i
        assert (images[i].array == i).all()  # the originals are untouched
    print("ok", len(results))


if __name__ == "__main__":
    main()
