"""The acceptance rule: what a verdict must reach to be accepted without a person. Learned by
`calibrate` (`labelagent calibrate`) with `learn`; applied to a verdict by `rule.route`."""
