"""Near-duplicate grouping: copies of an image stay together, distinct images never merge."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from cxr.data.decode import read_gray
from cxr.data.presets import Preset
from cxr.data.transforms import resize
from cxr.splits import near_duplicates as nd
from cxr.splits.assign import Scheme, make_splits
from cxr.splits.near_duplicates import draw_groups, group_table, near_duplicate_groups
from cxr.synth.chest import render_chest, sample_anatomy, to_uint8

REAL_NIH = Path(__file__).resolve().parents[2].parent / "shared" / "real" / "nih"
SIZE = 224


def copy_of(src: np.ndarray, seed: int) -> np.ndarray:
    """A hard copy made at source resolution: crop 4%, rotation, brightness, text, JPEG q70,
    then resized like preprocessing."""
    rng = np.random.default_rng(seed)
    h, w = src.shape
    top, left = int(h * rng.uniform(0, 0.04)), int(w * rng.uniform(0, 0.04))
    img = src[top : top + int(h * 0.96), left : left + int(w * 0.96)]
    matrix = cv2.getRotationMatrix2D((img.shape[1] / 2, img.shape[0] / 2), rng.uniform(-3, 3), 1)
    img = cv2.warpAffine(img, matrix, img.shape[::-1])
    img = np.clip(img * rng.uniform(0.9, 1.1) + rng.uniform(-20, 20), 0, 255).astype(np.uint8)
    scale = img.shape[0] / 600
    cv2.putText(img, "PORTABLE", (20, int(60 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 2)
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    return resize(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE), Preset(size=SIZE))


def check_grouping(sources: list[np.ndarray], owners: list[int]) -> None:
    """Originals plus two copies each: every copy joins its original, no two owners merge."""
    images, owner, original = [], [], []
    for k, src in enumerate(sources):
        images.append(resize(src, Preset(size=SIZE)))
        owner.append(owners[k]), original.append(k)
        for c in range(2):
            images.append(copy_of(src, seed=10 * k + c))
            owner.append(owners[k]), original.append(k)
    labels, pairs = near_duplicate_groups(np.stack(images))
    original = np.array(original)
    for k in range(len(sources)):
        assert len(set(labels[original == k])) == 1, f"a copy of image {k} was not grouped"
    owner = np.array(owner)
    for label in np.unique(labels):
        assert len(set(owner[labels == label])) == 1, "images of different owners merged"
    assert (pairs["i"] < pairs["j"]).all()


def test_real_radiographs_and_their_copies() -> None:
    if not (REAL_NIH / "Data_Entry_2017_v2020.csv").exists():
        pytest.skip(f"real NIH sample not found at {REAL_NIH} (it is not shipped with cxr)")
    entries = pd.read_csv(REAL_NIH / "Data_Entry_2017_v2020.csv").set_index("Image Index")
    paths = sorted((REAL_NIH / "images").glob("*.png"))[:10]
    owners = [int(entries.loc[p.name, "Patient ID"]) for p in paths]
    check_grouping([read_gray(p) for p in paths], owners)


def phantom(seed: int, size: int = 512) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return to_uint8(render_chest(sample_anatomy(rng), [], size, rng))


def test_phantoms_distinct_never_merge_copies_do() -> None:
    check_grouping([phantom(seed) for seed in range(8)], list(range(8)))


def test_group_table_and_figure(tmp_path: Path) -> None:
    images = np.stack([resize(phantom(s, 256), Preset(size=SIZE)) for s in range(3)])
    images = np.concatenate([images, images[:1]])  # image 3 repeats image 0
    ids = ["a", "b", "c", "d"]
    labels, pairs = near_duplicate_groups(images)
    table = group_table(ids, labels, pairs)
    assert list(table.columns) == ["group", "size", "image_ids", "max_distance"]
    assert table["image_ids"].tolist() == ["a|d"]
    assert table["size"].tolist() == [2]
    assert table["max_distance"].iloc[0] == pytest.approx(pairs["distance"].max())
    out = tmp_path / "groups.png"
    draw_groups(images, table, ids, out)
    assert cv2.imread(str(out)) is not None
    empty = tmp_path / "none.png"
    draw_groups(images, table.iloc[:0], ids, empty)
    assert cv2.imread(str(empty)) is not None


def test_a_shared_measure_rechecks_each_pair_of_ids_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overlapping stacks of one pool, searched with the pool's ids and one ``measured``, find
    the pairs a plain search finds, and re-check a pair of ids only the first time."""
    pool = np.stack([resize(phantom(s, 256), Preset(size=SIZE)) for s in range(4)])
    pool = np.concatenate([pool, pool[:2]])  # ids 4 and 5 repeat 0 and 1
    rechecked: list[int] = []
    recheck = nd.recheck
    monkeypatch.setattr(nd, "recheck", lambda *a: rechecked.append(len(a[1])) or recheck(*a))
    stacks = ([0, 1, 2, 3, 4, 5], [0, 2, 4, 5], [0, 1, 2, 3, 4, 5])
    plain = [nd.near_duplicate_pairs(pool[rows]) for rows in stacks]
    everything, rechecked[:] = sum(rechecked), []
    measured: nd.Measured = {}
    for rows, alone in zip(stacks, plain, strict=True):
        shared = nd.near_duplicate_pairs(pool[rows], ids=rows, measured=measured)
        pd.testing.assert_frame_equal(shared, alone)
        found = {(rows[i], rows[j]) for i, j in zip(shared["i"], shared["j"], strict=True)}
        assert found == {(0, 4), (1, 5)} & {(a, b) for a in rows for b in rows}
    # the plain searches re-checked every candidate of every stack; the shared one, each pair
    # of ids once: the second and third stack's pairs were all the first one's
    assert rechecked == [len(measured)] and 0 < len(measured) < everything
    assert set(measured) >= {(0, 4), (1, 5)}


def test_covid_miniature_only_planted_copies_share_a_group_and_a_side(tmp_path: Path) -> None:
    """The embedded COVID-19 Radiography phantoms at 64 px: planted re-exposed copies are found
    and split together; distinct phantoms (alike enough to correlate at 0.97 after
    registration) never merge."""
    from cxr.data.index import write_index
    from cxr.data.preprocess import load_tensor, preprocess
    from cxr.ingest import ingest
    from cxr.synth import synthesize
    from cxr.synth.covid_radiography import plan_items

    root = synthesize("covid_radiography", tmp_path / "covid", n=150, size=64, seed=4)
    index, manifest = ingest("covid_radiography", root)
    write_index(index, manifest, tmp_path / "index.parquet")
    preprocess(tmp_path / "index.parquet", root, Preset(size=64), tmp_path / "t")
    index = pd.read_parquet(tmp_path / "t" / "index.parquet")
    names = index["image_id"].tolist()
    labels, _ = near_duplicate_groups(load_tensor(tmp_path / "t"))
    side = dict(zip(names, make_splits(index, Scheme("random"), labels)["split"], strict=True))
    group = dict(zip(names, labels, strict=True))
    items = plan_items(150, seed=4)
    file_name = {item.index: item.file_name for item in items}
    planted = [(file_name[i.duplicate_of], i.file_name) for i in items if i.duplicate_of]
    assert len(planted) == 3
    assert all(group[original] == group[copy] for original, copy in planted)
    assert all(side[original] == side[copy] for original, copy in planted)
    assert len(set(labels)) == len(labels) - len(planted)


def test_candidate_search_finds_the_exact_nearest_neighbours() -> None:
    """The inverted-file search returns nearly all exact nearest neighbours of clustered data."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (40, 16)).astype(np.float32)
    x = centres[rng.integers(0, 40, 3000)] + rng.normal(0, 0.3, (3000, 16)).astype(np.float32)
    with nd.single_threaded():
        found = nd.nearest_neighbours(torch.from_numpy(x), 3)
    distance = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(distance, np.inf)
    nearest = distance.argmin(1)
    assert np.mean([nearest[k] in found[k] for k in range(len(x))]) > 0.97
    assert (found != np.arange(len(x))[:, None]).all()


def test_screen_keeps_a_copy_and_drops_a_different_image() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(128, 40, (2, SIZE, SIZE)).astype(np.float32)
    images = np.stack([cv2.GaussianBlur(x, (0, 0), 8) * 4 - 384 for x in noise]).clip(0, 255)
    copy = np.roll(images[0], (3, -2), axis=(0, 1)) * 0.9 + 10  # shifted, re-exposed image 0
    stack = np.concatenate([images, copy[None]]).astype(np.uint8)
    with nd.single_threaded():
        thumbs, _ = nd.reduce_images(stack)
        distance = nd.screen(thumbs, np.array([0, 0]), np.array([2, 1]))
    assert distance[0] <= nd.SCREEN_THRESHOLD / 4
    assert distance[1] > nd.SCREEN_THRESHOLD


def test_memmap_is_streamed_and_grouped_like_an_array(tmp_path: Path) -> None:
    images = np.stack([resize(phantom(s, 256), Preset(size=SIZE)) for s in range(3)])
    path = tmp_path / "images.npy"
    np.save(path, np.concatenate([images, images[1:2]]))
    labels, pairs = near_duplicate_groups(np.load(path, mmap_mode="r"))
    assert labels[3] == labels[1] and len(set(labels)) == 3
    assert pairs[["i", "j"]].values.tolist() == [[1, 3]]
