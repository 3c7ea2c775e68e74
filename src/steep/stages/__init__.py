"""The pipeline stages, one module each: ingest, synth, curate, train, evaluate."""
