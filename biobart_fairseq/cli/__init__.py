"""Console entry points (biobart-*)."""
