"""Running a scenario and its results: simulate(), the result tables, summaries."""
