"""The K3s API, and the only package that imports the `kubernetes` client.

client connects and turns every way the API can fail into words a user can act on; read
gathers what `status` shows; nodes and drain are the node lifecycle (cordon, drain, delete,
wait for Ready) that node replacement runs.
"""
