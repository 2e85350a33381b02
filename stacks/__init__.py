"""The program, and only what `pulumi up` imports: the stack settings (config/) and the composition
(database.py, rollout.py). Tools that run it or read stack files live in tools/ (tests/stacks/test_program_layout.py)."""
