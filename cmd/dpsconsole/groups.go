package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner): stub until this command is written.
func newGroupsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "groups",
		Short:  "Manage enrollment groups",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("groups: not built yet") },
	}
}
