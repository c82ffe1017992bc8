"""The acceptance rule: what a verdict must reach to be accepted without a person.

Learned by `calibrate.run_calibration` (`labelagent calibrate`), which reads the reviewed items
and chooses the threshold with `learn` (fixed-sequence Clopper-Pearson testing, holdout, the two
guarantees); a cascade's thresholds, all at once, by `cascade` with the same test
(`learn.fixed_sequence`). Stored, looked up and applied by `rule`: the calibrations table,
`thresholds_for` (what `labelagent label` routes by), `route` (one verdict) and `reroute`
(`calibrate --apply`). `rule` loads nothing heavy, so labeling never imports numpy or
scikit-learn.
"""
