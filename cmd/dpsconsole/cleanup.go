package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner): stub until this command is written.
func newCleanupCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "cleanup",
		Short:  "Find and delete orphaned registration records",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("cleanup: not built yet") },
	}
}
