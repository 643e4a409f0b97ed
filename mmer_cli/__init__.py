"""The `mmer` command: a dispatcher above the services that loads only the subcommand it runs."""
