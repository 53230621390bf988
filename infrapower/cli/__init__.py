"""The `infrapower` command and its subcommands: tools for admins, never
imported by the agents' runtime."""
