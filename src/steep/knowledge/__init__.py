"""`steep bench knowledge`: does the tuned model know the facts in its documents, under questions
worded in ways the training data never used? (methods.md §1-§2)

- corpus.py: a seeded world of fictional people and organizations, written as documents;
- probes.py: five probe kinds per entity (direct, rephrased, derived yes/no, comparison,
  unanswerable), each scored on its own;
- bench.py: the pipeline run in several variants (base, defaults, ablations), one table."""
