"""Deterministic names, labels, annotations and selectors for a task instance try."""

from __future__ import annotations

import random
import re
import string

import pytest

from airflow_k8s_jobs.manifests.names import (
    LABEL_PREFIX,
    MANAGED_BY,
    MAX_JOB_NAME,
    TaskInstanceKey,
    label_value,
    matches_task,
    object_name,
    sanitize_dns,
    task_annotations,
    task_labels,
    task_selector,
)
from simulated_k8s_cluster.selectors import labels_match, parse_label_selector

# Independent copies of the Kubernetes rules, so the tests do not trust the code under test.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

SCHEDULED = "scheduled__2026-03-01T00:00:00+00:00"
KEY = TaskInstanceKey("etl", "train", SCHEDULED, map_index=3, try_number=2)


def assert_label_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    assert not prefix or (len(prefix) <= 253 and DNS_SUBDOMAIN.match(prefix)), key
    assert len(name) <= 63 and QUALIFIED_NAME.match(name), key


def assert_label_value(value: str) -> None:
    assert isinstance(value, str)
    assert len(value) <= 63 and LABEL_VALUE.match(value), value


def assert_job_name(name: str) -> None:
    assert len(name) <= MAX_JOB_NAME, (name, len(name))
    assert DNS_LABEL.match(name), name
    # What the API server derives from it stays valid too.
    assert len(f"{name}-abcde") <= 63  # pod name from generateName
    assert len(f"{name}-9999-abcde") <= 63  # Indexed pod, up to 10,000 indexes
    assert_label_value(name)  # the pods' job-name label


# --- object_name --------------------------------------------------------------------------------


def test_format_is_dag_task_map_try_hash() -> None:
    name = object_name(KEY)
    assert re.fullmatch(r"etl-train-m3-t2-[a-z2-7]{10}", name), name


def test_unmapped_task_has_no_map_part() -> None:
    name = object_name(TaskInstanceKey("etl", "train", SCHEDULED))
    assert re.fullmatch(r"etl-train-t1-[a-z2-7]{10}", name), name


def test_name_is_deterministic() -> None:
    same = TaskInstanceKey("etl", "train", SCHEDULED, 3, 2)
    assert object_name(same) == object_name(KEY)
    assert MAX_JOB_NAME == 52


@pytest.mark.parametrize(
    "other",
    [
        TaskInstanceKey("etl", "train", "manual__2026-03-01T00:00:00+00:00", 3, 2),
        TaskInstanceKey("etl", "train", SCHEDULED, 3, 3),
        TaskInstanceKey("etl", "train", SCHEDULED, 4, 2),
        TaskInstanceKey("etl", "train", SCHEDULED, -1, 2),
        TaskInstanceKey("etl", "train2", SCHEDULED, 3, 2),
        TaskInstanceKey("ETL", "train", SCHEDULED, 3, 2),  # sanitises to the same prefix
        TaskInstanceKey("e_tl", "train", SCHEDULED, 3, 2),
    ],
)
def test_any_difference_in_the_key_changes_the_name(other: TaskInstanceKey) -> None:
    assert object_name(other) != object_name(KEY)


def test_ids_that_sanitise_alike_get_different_names() -> None:
    keys = [TaskInstanceKey(dag, "t", "r") for dag in ("my_dag", "my.dag", "my-dag", "My_Dag")]
    names = [object_name(k) for k in keys]
    assert len({n.rsplit("-", 1)[0] for n in names}) == 1  # same readable part
    assert len(set(names)) == len(names)


def test_dag_and_task_split_is_not_ambiguous() -> None:
    # "a-b" + "c" and "a" + "b-c" read alike; the hash keeps them apart.
    assert object_name(TaskInstanceKey("a-b", "c", "r")) != object_name(
        TaskInstanceKey("a", "b-c", "r")
    )


def test_long_ids_are_shortened_and_stay_unique() -> None:
    dag = "customer_lifetime_value_feature_engineering_pipeline_daily"
    names = {
        object_name(TaskInstanceKey(dag, f"compute_features_for_region_{r}", "r")) for r in "ab"
    }
    assert len(names) == 2
    for name in names:
        assert_job_name(name)
        assert name.startswith("customer-lifetime-")
        assert "-compute-features-" in name
        assert "-t1-" in name


def test_short_dag_leaves_room_for_a_long_task() -> None:
    name = object_name(TaskInstanceKey("etl", "x" * 80, "r"))
    assert_job_name(name)
    assert name.startswith("etl-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")


def test_long_dag_keeps_half_the_room_for_the_task() -> None:
    name = object_name(TaskInstanceKey("d" * 80, "t" * 80, "r"))
    assert_job_name(name)
    readable = name.split("-t1-")[0]
    dag, task = readable.split("-")
    assert abs(len(dag) - len(task)) <= 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ETL_Daily.v2", "etl-daily-v2"),
        ("__private__", "private"),
        ("a__b..c", "a-b-c"),
        ("données:2026/03", "donnes202603"),
        ("データ", ""),
        ("---", ""),
        ("Train Model!", "trainmodel"),
    ],
)
def test_sanitize_dns(text: str, expected: str) -> None:
    assert sanitize_dns(text) == expected


def test_ids_without_any_usable_character_fall_back_to_job() -> None:
    name = object_name(TaskInstanceKey("データ", "学習", "r"))
    assert re.fullmatch(r"job-t1-[a-z2-7]{10}", name), name


def test_one_usable_id_is_enough() -> None:
    assert object_name(TaskInstanceKey("データ", "train", "r")).startswith("train-t1-")
    assert object_name(TaskInstanceKey("etl", "学習", "r")).startswith("etl-t1-")


@pytest.mark.parametrize(
    "key",
    [
        TaskInstanceKey("d", "t", "r", map_index=10**6, try_number=10**4),
        TaskInstanceKey("d" * 60, "t" * 60, "r", map_index=10**9, try_number=10**9),
        TaskInstanceKey("d", "t", "r", map_index=10**60, try_number=10**60),
        TaskInstanceKey("-", "_", "", 0, 0),
        TaskInstanceKey("9", "9", "9", 9, 9),
    ],
)
def test_extreme_keys_still_give_valid_names(key: TaskInstanceKey) -> None:
    assert_job_name(object_name(key))


_ALPHABET = string.ascii_letters + string.digits + "_.-" + " :+/@é日"


def _random_id(rng: random.Random) -> str:
    length = rng.choice([1, 3, 8, 20, 40, 64, 120, 250])
    return "".join(rng.choice(_ALPHABET) for _ in range(length))


def _random_key(rng: random.Random) -> TaskInstanceKey:
    return TaskInstanceKey(
        dag_id=_random_id(rng),
        task_id=_random_id(rng),
        run_id=rng.choice(
            [
                f"scheduled__2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T00:00:00+00:00",
                f"manual__{rng.random()}",
                _random_id(rng),
            ]
        ),
        map_index=rng.choice([-1, 0, rng.randint(1, 10_000)]),
        try_number=rng.randint(0, 200),
    )


@pytest.mark.parametrize("seed", range(20))
def test_random_keys_give_valid_unique_names_and_labels(seed: int) -> None:
    rng = random.Random(seed)
    keys = {_random_key(rng) for _ in range(300)}
    names: dict[str, TaskInstanceKey] = {}
    for key in keys:
        name = object_name(key)
        assert_job_name(name)
        assert name == object_name(TaskInstanceKey(**vars(key)))
        assert name not in names, (key, names.get(name))
        names[name] = key
        for label, value in task_labels(key).items():
            assert_label_key(label)
            assert_label_value(value)
        assert matches_task(task_labels(key), task_annotations(key), key)


def test_many_runs_of_one_task_never_collide() -> None:
    names = {
        object_name(TaskInstanceKey("etl", "load", f"scheduled__{day}", m, t))
        for day in range(400)
        for m in (-1, 0, 1)
        for t in (1, 2)
    }
    assert len(names) == 400 * 3 * 2


# --- labels and annotations ---------------------------------------------------------------------


def test_task_labels_of_plain_ids_are_the_ids() -> None:
    labels = task_labels(TaskInstanceKey("etl", "train", "manual__1", 3, 2))
    assert labels == {
        **MANAGED_BY,
        "airflow-k8s-jobs.io/dag-id": "etl",
        "airflow-k8s-jobs.io/task-id": "train",
        "airflow-k8s-jobs.io/run-id": "manual__1",
        "airflow-k8s-jobs.io/map-index": "3",
        "airflow-k8s-jobs.io/try-number": "2",
    }
    assert LABEL_PREFIX == "airflow-k8s-jobs.io/"
    assert MANAGED_BY == {"app.kubernetes.io/managed-by": "airflow-k8s-jobs"}


def test_unmapped_task_has_no_map_index_label() -> None:
    labels = task_labels(TaskInstanceKey("etl", "train", "r"))
    assert "airflow-k8s-jobs.io/map-index" not in labels
    assert (
        task_annotations(TaskInstanceKey("etl", "train", "r"))["airflow-k8s-jobs.io/map-index"]
        == "-1"
    )


def test_run_id_with_invalid_characters_is_sanitised_with_a_hash() -> None:
    value = task_labels(KEY)["airflow-k8s-jobs.io/run-id"]
    assert_label_value(value)
    assert re.fullmatch(r"scheduled__2026-03-01T00_00_00_00_00-[a-z2-7]{8}", value), value


def test_changed_label_values_never_collide() -> None:
    originals = ["a:b", "a+b", "a b", "a_b:", "a/b", ":a_b"]
    values = [label_value(v) for v in originals]
    assert len(set(values)) == len(values)
    assert label_value("a_b") == "a_b"  # valid values are kept as they are
    assert "a_b" not in values


@pytest.mark.parametrize(
    "original",
    ["x" * 63, "x" * 64, "x" * 500, "-leading", "trailing.", "日本語", "", "a" * 62 + ":"],
)
def test_label_value_is_always_valid(original: str) -> None:
    value = label_value(original)
    assert_label_value(value)
    if len(original) <= 63 and LABEL_VALUE.match(original):
        assert value == original
    else:
        assert value != original


def test_long_ids_share_a_prefix_but_not_a_label_value() -> None:
    a, b = "p" * 80 + "a", "p" * 80 + "b"
    assert label_value(a) != label_value(b)
    assert label_value(a).startswith("p" * 50)


def test_annotations_keep_the_exact_originals() -> None:
    key = TaskInstanceKey("Données ETL", "train.v2", SCHEDULED, 7, 3)
    assert task_annotations(key) == {
        "airflow-k8s-jobs.io/dag-id": "Données ETL",
        "airflow-k8s-jobs.io/task-id": "train.v2",
        "airflow-k8s-jobs.io/run-id": SCHEDULED,
        "airflow-k8s-jobs.io/map-index": "7",
        "airflow-k8s-jobs.io/try-number": "3",
    }
    for annotation in task_annotations(key):
        assert_label_key(annotation)


# --- matches_task -------------------------------------------------------------------------------


def test_an_object_of_this_try_matches() -> None:
    labels = {**task_labels(KEY), "team": "ml"}
    annotations = {**task_annotations(KEY), "note": "x"}
    assert matches_task(labels, annotations, KEY)


def test_labels_alone_are_enough_when_there_are_no_annotations() -> None:
    assert matches_task(task_labels(KEY), None, KEY)
    assert matches_task(task_labels(KEY), {}, KEY)


@pytest.mark.parametrize(
    "other",
    [
        TaskInstanceKey("etl", "train", SCHEDULED, 3, 1),  # the previous try
        TaskInstanceKey("etl", "train", "manual__x", 3, 2),  # another run
        TaskInstanceKey("etl", "train", SCHEDULED, 4, 2),  # another map index
        TaskInstanceKey("etl", "train", SCHEDULED, -1, 2),  # not mapped
        TaskInstanceKey("etl", "eval", SCHEDULED, 3, 2),
        TaskInstanceKey("etl2", "train", SCHEDULED, 3, 2),
    ],
)
def test_an_object_of_another_try_or_task_does_not_match(other: TaskInstanceKey) -> None:
    assert not matches_task(task_labels(other), task_annotations(other), KEY)
    assert not matches_task(task_labels(KEY), task_annotations(KEY), other)


def test_unmapped_key_does_not_adopt_a_mapped_object() -> None:
    unmapped = TaskInstanceKey("etl", "train", "r")
    mapped = TaskInstanceKey("etl", "train", "r", map_index=0)
    assert not matches_task(task_labels(mapped), None, unmapped)


def test_objects_not_managed_by_us_do_not_match() -> None:
    labels = task_labels(KEY)
    del labels["app.kubernetes.io/managed-by"]
    assert not matches_task(labels, task_annotations(KEY), KEY)
    assert not matches_task(None, task_annotations(KEY), KEY)
    assert not matches_task({}, None, KEY)
    foreign = {**task_labels(KEY), "app.kubernetes.io/managed-by": "helm"}
    assert not matches_task(foreign, task_annotations(KEY), KEY)


def test_a_differing_annotation_vetoes_matching_labels() -> None:
    # Same label values (e.g. ids that sanitise and hash alike) but another original id.
    annotations = {**task_annotations(KEY), "airflow-k8s-jobs.io/run-id": "something else"}
    assert not matches_task(task_labels(KEY), annotations, KEY)


# --- task_selector ------------------------------------------------------------------------------


def test_selector_text() -> None:
    key = TaskInstanceKey("etl", "train", "manual__1", 3, 2)
    assert task_selector(key) == (
        "app.kubernetes.io/managed-by=airflow-k8s-jobs,airflow-k8s-jobs.io/dag-id=etl,"
        "airflow-k8s-jobs.io/task-id=train,airflow-k8s-jobs.io/run-id=manual__1,"
        "airflow-k8s-jobs.io/map-index=3,airflow-k8s-jobs.io/try-number=2"
    )
    assert "try-number" not in task_selector(key, include_try=False)


def _selects(selector: str, labels: dict[str, str]) -> bool:
    return labels_match(parse_label_selector(selector), labels)


@pytest.mark.parametrize("map_index", [-1, 0, 5])
def test_selector_selects_this_try_only(map_index: int) -> None:
    key = TaskInstanceKey("etl", "train", SCHEDULED, map_index, 2)
    selector = task_selector(key)
    assert _selects(selector, {**task_labels(key), "other": "x"})
    for other in (
        TaskInstanceKey("etl", "train", SCHEDULED, map_index, 1),
        TaskInstanceKey("etl", "train", SCHEDULED, map_index + 1, 2),
        TaskInstanceKey("etl", "train", "manual__x", map_index, 2),
    ):
        assert not _selects(selector, task_labels(other)), other


def test_selector_without_try_selects_every_try_of_the_task_instance() -> None:
    key = TaskInstanceKey("etl", "train", SCHEDULED, -1, 3)
    selector = task_selector(key, include_try=False)
    for try_number in (1, 2, 3):
        assert _selects(
            selector, task_labels(TaskInstanceKey("etl", "train", SCHEDULED, -1, try_number))
        )
    # An unmapped task's selector does not pick up a mapped task's objects.
    assert not _selects(selector, task_labels(TaskInstanceKey("etl", "train", SCHEDULED, 0, 3)))
