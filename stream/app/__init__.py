"""The running programs: the serve loop and its composition, ingest, offline predict, output
files, metrics and the HTTP probes, signals and logs."""
