package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner): stub until this command is written.
func newEnrollmentsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "enrollments",
		Short:  "Manage individual enrollments",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("enrollments: not built yet") },
	}
}
