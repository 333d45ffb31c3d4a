"""The pure core of the service: wire formats, windows, smoothing, epochs, the offset ledger and
the pipeline that ties them together, with the ports it needs. No torch, Kafka, OpenCV or
Prometheus here (checked by import-linter)."""
