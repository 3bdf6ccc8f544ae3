"""The mistakes a type checker must catch: ``mypy --strict`` reports every line whose comment
says error, and no other line."""

import numpy as np

import mitk


def main(path: str) -> None:
    img = mitk.Image(np.zeros((4, 5, 6), np.float32))
    img.as_numpy(writable=True)  # error
    img.save(123)  # error
    mitk.IOUtil.save(img, 123)  # error
    mitk.Image(np.zeros((4, 5)), spacing="abc")  # error
    img.spacing = "abc"  # error
    img.ndim = 3  # error
    mitk.Image.load(path, 3)  # error
    mitk.Image.from_numpy(np.zeros((2, 2)), origin=1.5)  # error
