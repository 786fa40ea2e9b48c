"""Raw tables in, validated canonical tables out: schemas, loading, the validation report, the
CDNOW adapter, and all file writing."""

from customer_value.data.tables import TABLE_COLUMNS, Tables, empty_table

__all__ = ["TABLE_COLUMNS", "Tables", "empty_table"]
