package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner): stub until this command is written.
func newKeysCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "keys",
		Short:  "Derive and generate device keys, sign SAS tokens",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("keys: not built yet") },
	}
}
