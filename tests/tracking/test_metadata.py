"""What a run records about its inputs: the data fingerprint and the code version."""

from __future__ import annotations

import pandas as pd

from customer_value.data.tables import Tables
from customer_value.tracking import metadata


def test_fingerprint_changes_with_content():
    customers = pd.DataFrame({"customer_id": pd.Series(["a", "b"], dtype="str"),
                              "signup_at": pd.to_datetime(["2024-01-01", "2024-01-02"]).astype("datetime64[us]")})
    tx = pd.DataFrame({"transaction_id": pd.Series(["t"], dtype="str"), "customer_id": pd.Series(["a"], dtype="str"),
                       "occurred_at": pd.to_datetime(["2024-01-03"]).astype("datetime64[us]"), "amount": [5.0]})
    one = metadata.data_fingerprint(Tables.from_frames(customers=customers, transactions=tx))
    again = metadata.data_fingerprint(Tables.from_frames(customers=customers, transactions=tx))
    other = metadata.data_fingerprint(Tables.from_frames(customers=customers, transactions=tx.assign(amount=[6.0])))
    assert one == again
    assert one["transactions"]["sha256"] != other["transactions"]["sha256"]
    assert one["customers"] == other["customers"]
    assert one["transactions"]["rows"] == 1 and one["customers"]["customers"] == 2
    flat = metadata.fingerprint_params(one)
    assert flat["data.transactions.rows"] == 1


def test_code_version_names_a_commit_or_the_package():
    version = metadata.code_version()
    assert len(version.split("+")[0]) == 40 or version.startswith("customer_value==")
