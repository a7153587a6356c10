"""Hosts and boards you already own, from an Ansible inventory: the plan is the inventory itself."""
