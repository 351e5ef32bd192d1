package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner): stub until this command is written.
func newRegistrationsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "registrations",
		Short:  "Manage registration records",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("registrations: not built yet") },
	}
}
