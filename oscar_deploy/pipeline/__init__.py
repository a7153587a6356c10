"""The phases of `up`, each with declared inputs, and the plan that says which would run and why."""
