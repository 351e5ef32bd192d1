package main

import "github.com/spf13/cobra"

// runConsole opens the terminal console. Until the console exists it shows
// the help.
func runConsole(cmd *cobra.Command, a *app) error { return cmd.Help() }
