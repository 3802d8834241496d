"""The bottom layer: what train/, hw/ and flows/ all use and that depends on none of them.

errors (the one-line UserError), atomic writes, strict YAML, and boards with their resource
budgets. Nothing here imports torch, FINN or any other package of this project.
"""
