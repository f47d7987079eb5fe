"""Node lifecycle on a running cluster: replacing a node (`boot --replace`, `--replace-stale`)
and removing one dropped from cluster.yaml (`boot --prune`), one node at a time, draining it
first and keeping etcd quorum. steps and plan are pure; run executes; journal resumes."""
