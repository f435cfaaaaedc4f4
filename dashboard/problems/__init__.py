"""Problems: outstanding failures grouped by cause, across companies and syncs.

A *problem* is a status code, a data type and a normalised message
(`dashboard.fingerprint`): every outstanding failed item (its transaction's
latest push that left it unpushed) and every failed sync without items in a
company's current failing streak belongs to exactly one.

- `keys`: which problem a failure belongs to; a cause never seen makes one.
  Its fingerprints are aliases, so the normaliser can improve without losing
  what people attached to a problem.
- `upkeep`: ingest keeps each company's share of each problem, and the
  problems' counts, trend, platforms and automatic states (resolved when
  nothing is outstanding, regressed when it fails again), incrementally,
  under the company's current-state lock.
- `lifecycle`: what people do to a problem (assign, note, ticket, ignore,
  snooze, reopen, playbook, merge), each recorded as its activity.
- `backfill`: builds the problems of an existing estate in batches
  (`manage.py build_problems`), and re-points aliases after the normaliser
  changes.
"""
