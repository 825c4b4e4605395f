"""The ground floor: units, errors, seeded random streams, file writing and text tables (import nothing above)."""
