"""Every SQL query of the project, grouped by table. Functions take a sqlite_utils.Database first."""
