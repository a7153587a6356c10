"""The node layer as the CLI drives it: nodes, Ansible inventories and runs, k3s variables, the k3s bundle."""
