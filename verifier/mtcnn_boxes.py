"""MTCNN's box arithmetic for one image, as the ``mtcnn`` package computes it.

The package's helpers (``mtcnn.utils.bboxes``, ``images``, ``landmarks``) are plain
NumPy, but importing any of them imports the package, which imports TensorFlow
(seconds and hundreds of megabytes). These are the same computations, restricted to one image,
so that detection runs without TensorFlow; ``tests/verifier/test_keras_onnx.py``
compares the whole cascade's output with ``MTCNN.detect_faces`` photo by photo.

Adapted from mtcnn (https://github.com/ipazc/mtcnn), MIT License,
Copyright (c) 2019-2024 Iván de Paz Centeno.

Rows are ``[image, x1, y1, x2, y2, score]`` (``image`` always 0 here), followed by
ten landmark coordinates (five x, then five y) after ONet.
"""
from __future__ import annotations

import numpy as np


def scale_pyramid(width: int, height: int, min_face_size: float, scale_factor: float,
                  min_size: int = 12) -> np.ndarray:
    """The scales PNet is run at: the smallest face searched for becomes 12 pixels,
    then smaller by ``scale_factor`` until the photo is 12 pixels on its short side."""
    count = round(-(np.log(min(width, height) / min_size) / np.log(scale_factor) + 1))
    return min_size / min_face_size * scale_factor ** np.arange(count)


def proposals(regression: np.ndarray, scores: np.ndarray, threshold: float, scale: float,
              stride: int = 2, cell: int = 12) -> np.ndarray:
    """PNet's windows above ``threshold`` at one pyramid level (outputs of shape
    ``(1, h, w, 4)`` and ``(1, h, w, 2)``), regressed, in the photo's coordinates,
    by score (highest first)."""
    confidence = scores[:, :, :, 1]
    found = np.stack(np.where(confidence > threshold))  # image, y, x
    reg_x1, reg_y1, reg_x2, reg_y2 = np.transpose(regression[found[0], found[1], found[2]], (1, 0))
    strides = np.asarray([[1], [stride], [stride]])
    up_left = found * strides + np.asarray([[0], [1], [1]])
    bottom_right = found * strides + np.asarray([[0], [cell], [cell]])
    w = bottom_right[2] - up_left[2]
    h = bottom_right[1] - up_left[1]
    boxes = np.stack([found[0], up_left[2] + reg_x1 * w, up_left[1] + reg_y1 * h,
                      bottom_right[2] + reg_x2 * w, bottom_right[1] + reg_y2 * h,
                      confidence[found[0], found[1], found[2]]], axis=0).T
    boxes = boxes[np.argsort(boxes[:, -1])[::-1]]
    boxes[:, 1:5] = boxes[:, 1:5] / scale
    return boxes


def to_square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square on its longer side, about the same centre."""
    boxes = boxes.copy()
    h = boxes[:, 4] - boxes[:, 2]
    w = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 1] = boxes[:, 1] + w * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 2] + h * 0.5 - side * 0.5
    boxes[:, 3:5] = boxes[:, 1:3] + np.tile(side, (2, 1)).T
    return boxes


def rescore(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The boxes with the last column of a network's scores as their score."""
    boxes[:, -1] = scores[:, -1]
    return boxes


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The boxes moved by a network's offsets (fractions of their size)."""
    boxes = boxes.copy()
    w = boxes[:, 3] - boxes[:, 1] + 1
    h = boxes[:, 4] - boxes[:, 2] + 1
    boxes[:, 1:5] += offsets * np.stack([w, h, w, h], axis=-1)
    return boxes


def above(boxes: np.ndarray, threshold: float, column: int = -1) -> np.ndarray:
    """The boxes whose score (``column``) is above ``threshold``."""
    return boxes[np.where(boxes[:, column] > threshold)[0]]


def place_landmarks(landmarks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """ONet's landmarks (fractions of each box) in the photo's coordinates."""
    landmarks = landmarks.copy()
    w = boxes[:, 3:4] - boxes[:, 1:2] + 1
    h = boxes[:, 4:5] - boxes[:, 2:3] + 1
    landmarks[:, 0:5] = w * landmarks[:, 0:5] + boxes[:, 1:2] - 1
    landmarks[:, 5:10] = h * landmarks[:, 5:10] + boxes[:, 2:3] - 1
    return landmarks


def clip(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The box corners (not the landmarks) kept inside a photo of ``shape``."""
    boxes = boxes.copy()
    for column, limit in ((1, shape[1]), (3, shape[1]), (2, shape[0]), (4, shape[0])):
        boxes[:, column] = np.minimum(np.maximum(boxes[:, column], 0), limit - 1)
    return boxes


def as_faces(boxes: np.ndarray) -> list[dict]:
    """``MTCNN.detect_faces``'s answer: ``box`` ``[x, y, width, height]`` (rounded),
    ``confidence`` and the five ``keypoints`` (rounded)."""
    faces = []
    for row in boxes:
        x1, y1, x2, y2 = row[1:5]
        box = np.asarray([x1, y1, x2 - x1, y2 - y1]).round().astype(int).tolist()
        points = row[6:16].round().astype(int)
        faces.append({"box": box, "confidence": row[5], "keypoints": {
            "nose": [points[2], points[7]], "mouth_right": [points[4], points[9]],
            "right_eye": [points[1], points[6]], "left_eye": [points[0], points[5]],
            "mouth_left": [points[3], points[8]]}})
    return faces
