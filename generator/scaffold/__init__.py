"""`new`: scaffold a cluster repo with cookiecutter, then validate, render and git init it.

create (the use case) → ask (the questions, each answer checked as typed by checks, which
reuses config/checks) → cookiecutter (the only cookiecutter user; it no longer asks) →
filters (its Jinja extension, loaded by name from templates/cluster/cookiecutter.json, and
used by ask for the proposed defaults).
"""
