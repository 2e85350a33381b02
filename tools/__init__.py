"""Tools around the program that `pulumi up` never imports: the mock runner, render, change model, verify, recovery,
and the generator of docs/configuration.md."""
