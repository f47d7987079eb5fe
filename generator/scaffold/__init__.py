"""`new`: scaffold a cluster repo with cookiecutter, then validate, render and git init it.

create (the use case) → cookiecutter (the only cookiecutter user) → filters (its Jinja
extension, loaded by name from templates/cluster/cookiecutter.json).
"""
