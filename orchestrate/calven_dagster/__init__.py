"""A Dagster code location that runs tap-calven through `meltano run`, split into partitions."""
