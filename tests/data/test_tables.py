"""The one definition of the NLQ query key."""

import pyarrow as pa

from egonlq.data.tables import nlq_query_uids


def test_nlq_query_uid_joins_clip_annotation_and_index() -> None:
    uids = nlq_query_uids(pa.array(["c1", "c2"]), pa.array(["a", "b"]), pa.array([0, 12], pa.int32()))
    assert uids.to_pylist() == ["c1:a:0", "c2:b:12"]
