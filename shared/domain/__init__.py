"""Domain logic shared by the API, the workers and the CLI. Functions raise domain errors, never HTTP ones."""
