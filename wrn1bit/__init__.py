"""The top of the pipe: one console command, `wrn1bit`, over train/, flows/ and hw/ (wrn1bit/cli.py)."""
