"""One module per command or command group; each imports its heavy dependencies inside the functions."""
