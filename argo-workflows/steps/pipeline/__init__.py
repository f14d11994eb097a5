"""The pipeline's steps as one command line: tags, pin, promote, rollback, cleanup.

Run the same by hand, in the tests and in the workflow pods:
`PYTHONPATH=argo-workflows/steps python3 -m pipeline <command> --help`. Standard library and PyYAML
only; git, cosign, crane and kubectl come from PATH."""
